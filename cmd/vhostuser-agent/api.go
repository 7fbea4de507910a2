package main

import (
	"context"
	"fmt"
	"log/slog"

	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	"github.com/kubevirt-vhostuser/vhostuser/agent/events"
	"github.com/kubevirt-vhostuser/vhostuser/agent/pods"
	"github.com/kubevirt-vhostuser/vhostuser/internal/version"
)

// Values of -api.
const (
	apiInCluster = "in-cluster"
	apiNone      = "none"
)

// apiSide is the agent's Kubernetes side: the pod and VMI informers and
// the event recorder (nil with -events=false).
type apiSide struct {
	cache    *pods.Cache
	recorder *events.Recorder
}

// newAPI builds the pod and VMI informers and, withEvents, the event
// recorder from the pod's service account.
func newAPI(ctx context.Context, mode, node string, withEvents bool, log *slog.Logger) (*apiSide, error) {
	if mode != apiInCluster {
		return nil, fmt.Errorf("-api %q: use %s or %s", mode, apiInCluster, apiNone)
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("in-cluster config (run in a pod with a service account token, or -api %s): %w", apiNone, err)
	}
	cfg.UserAgent = "vhostuser-agent/" + version.Version
	// client-go logs through klog; keep one log stream and format.
	klog.SetSlogLogger(log.With("component", "client-go"))
	cache, err := pods.New(cfg, node)
	if err != nil {
		return nil, err
	}
	k := &apiSide{cache: cache}
	if withEvents {
		if k.recorder, err = events.NewRecorder(ctx, cfg, node); err != nil {
			return nil, err
		}
	}
	return k, nil
}
