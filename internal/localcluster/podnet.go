package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// addBridge makes the pods' bridge with the host's address BridgeGateway on it, up,
// before the first pod (the CNI bridge plugin then finds it as it would have made it).
// Down deletes it with the rest of the pods' network.
func (c *Cluster) addBridge() error {
	if _, err := os.Stat("/sys/class/net/" + bridgeName); err != nil {
		if _, err := run("ip", "link", "add", bridgeName, "type", "bridge"); err != nil {
			return err
		}
	}
	if out, err := run("ip", "-o", "addr", "show", "dev", bridgeName); err != nil {
		return err
	} else if !slices.Contains(strings.Fields(out), BridgeGateway+"/24") {
		if _, err := run("ip", "addr", "add", BridgeGateway+"/24", "dev", bridgeName); err != nil {
			return err
		}
	}
	_, err := run("ip", "link", "set", bridgeName, "up")
	return err
}

// ServeAPIServerOnBridge forwards TCP connections from BridgeGateway:APIServerPort to
// the API server on loopback until ctx ends, so that pods on the pod network (with
// Options.HostOnPodNetwork) reach it at KUBERNETES_SERVICE_HOST=BridgeGateway: the
// API server listens on loopback only, and its certificate names BridgeGateway. The
// forwarder lives in the calling process. It returns once it listens.
func (c *Cluster) ServeAPIServerOnBridge(ctx context.Context) error {
	if !c.podNetwork {
		return errors.New("ServeAPIServerOnBridge needs Options.HostOnPodNetwork")
	}
	addr := net.JoinHostPort(BridgeGateway, strconv.Itoa(apiserverPort))
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("forwarding the API server to the pods' bridge: %w", err)
	}
	c.Logf("forwarding %s (pods' bridge) to the API server on loopback", addr)
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return // closed when ctx ended
			}
			go forward(ctx, in, net.JoinHostPort("127.0.0.1", strconv.Itoa(apiserverPort)))
		}
	}()
	return nil
}

// forward copies both ways between in and a new connection to target, until either
// side closes or ctx ends.
func forward(ctx context.Context, in net.Conn, target string) {
	defer in.Close()
	var d net.Dialer
	out, err := d.DialContext(ctx, "tcp", target)
	if err != nil {
		return // the API server is down: the pod's client sees the connection close
	}
	defer out.Close()
	stop := context.AfterFunc(ctx, func() { in.Close(); out.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done // one side ended: closing both ends the other copy
}
