package benchgate

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// controllerEnv is the controller's environment: the harness's own, without a
// KUBECONFIG of the person running it (the controller gets --kubeconfig).
func controllerEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") {
			out = append(out, kv)
		}
	}
	return out
}

// clientLimits are the controller's client-side request limits: GATE_KUBE_API_QPS
// and GATE_KUBE_API_BURST, or the defaults given.
func clientLimits(defQPS, defBurst int) (qps, burst int, err error) {
	read := func(name string, def int) (int, error) {
		v := os.Getenv(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("%s=%q: want a positive integer", name, v)
		}
		return n, nil
	}
	if qps, err = read("GATE_KUBE_API_QPS", defQPS); err != nil {
		return 0, 0, err
	}
	burst, err = read("GATE_KUBE_API_BURST", defBurst)
	return qps, burst, err
}
