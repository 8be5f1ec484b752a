//go:build e2e && !faults

package e2e

// suite: the webhook on the host network, registered by URL on loopback.
var suite = suiteHooks{webhookAPIServerHost: "127.0.0.1"}
