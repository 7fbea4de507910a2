package ovsenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// otherConfig is the Open_vSwitch other_config ovs-vswitchd starts with:
// DPDK on this instance's file prefix and memory, then Options.OtherConfig.
func (o *OVS) otherConfig() map[string]string {
	extra := "--file-prefix=" + o.FilePrefix
	cfg := map[string]string{
		"dpdk-init":    "true",
		"pmd-maxsleep": "10000",
	}
	if o.Hugepages {
		cfg["dpdk-socket-mem"] = "256"
	} else {
		extra += " --no-huge --legacy-mem -m 512"
	}
	cfg["dpdk-extra"] = extra
	for k, v := range o.opts.OtherConfig {
		cfg[k] = v
	}
	return cfg
}

// useHugepages resolves Options.Hugepages ("auto" needs 128 free 2 MiB pages
// and a hugetlbfs mount).
func useHugepages(mode string) bool {
	switch mode {
	case "on":
		return true
	case "off":
		return false
	}
	b, err := os.ReadFile("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")
	if err != nil {
		return false
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if n < 128 {
		return false
	}
	m, err := os.ReadFile("/proc/mounts")
	return err == nil && bytes.Contains(m, []byte(" hugetlbfs "))
}

// StartVswitchd starts ovs-vswitchd in the instance's network namespace and
// waits until DPDK is initialised and it answers on its control socket.
func (o *OVS) StartVswitchd(ctx context.Context) error {
	if o.Netns == "" {
		return errors.New("ovsenv: no network namespace (instance started with NoVswitchd?)")
	}
	if o.Pid("ovs-vswitchd") != 0 {
		return nil
	}
	// A fresh start must not trust a dpdk_initialized left by the previous run.
	_, _ = o.Vsctl(ctx, "--no-wait", "set", "Open_vSwitch", ".", "dpdk_initialized=false")
	_, err := o.run(ctx, "ip", "netns", "exec", o.Netns, "ovs-vswitchd", o.Endpoint(),
		"--pidfile="+o.pidfile("ovs-vswitchd"), "--unixctl="+o.ctl("ovs-vswitchd"),
		"--log-file="+o.LogFile("ovs-vswitchd"), "--detach")
	if err != nil {
		return fmt.Errorf("%w\n%s", err, o.LogTail("ovs-vswitchd", 20))
	}
	return o.waitFor(ctx, "ovs-vswitchd", func() bool {
		if _, err := o.Appctl(ctx, "ovs-vswitchd", "version"); err != nil {
			return false
		}
		out, err := o.Vsctl(ctx, "--no-wait", "get", "Open_vSwitch", ".", "dpdk_initialized")
		return err == nil && strings.TrimSpace(out) == "true"
	})
}

// StopVswitchd stops ovs-vswitchd (exit --cleanup), simulating a dataplane
// outage; the database keeps answering.
func (o *OVS) StopVswitchd(ctx context.Context) error {
	return o.stopDaemon(ctx, "ovs-vswitchd", "exit", "--cleanup")
}

// RestartVswitchd stops and starts ovs-vswitchd.
func (o *OVS) RestartVswitchd(ctx context.Context) error {
	if err := o.StopVswitchd(ctx); err != nil {
		return err
	}
	return o.StartVswitchd(ctx)
}
