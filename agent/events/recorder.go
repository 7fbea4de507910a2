package events

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/record"

	"github.com/kubevirt-vhostuser/vhostuser/agent/pods"
)

// Component is the source component of our events.
const Component = "vhostuser-agent"

// Sink records events.
type Sink interface{ Record(Event) }

// Recorder is a Sink that sends events to the API server through
// client-go's broadcaster, which aggregates repeats, rate-limits per
// object and retries.
type Recorder struct {
	broadcaster record.EventBroadcaster
	recorder    record.EventRecorder
}

// NewRecorder starts a broadcaster writing core/v1 Events with cfg; node
// is the events' source host. Stop it with Shutdown.
func NewRecorder(ctx context.Context, cfg *rest.Config, node string) (*Recorder, error) {
	scheme, err := coreScheme()
	if err != nil {
		return nil, fmt.Errorf("events scheme: %w", err)
	}
	s, err := newSink(cfg, scheme)
	if err != nil {
		return nil, err
	}
	b := record.NewBroadcaster(record.WithContext(ctx))
	b.StartRecordingToSink(s)
	return &Recorder{
		broadcaster: b,
		recorder:    b.NewRecorder(scheme, corev1.EventSource{Component: Component, Host: node}),
	}, nil
}

// Record sends e on its pod and, when known, its VMI.
func (r *Recorder) Record(e Event) {
	for _, ref := range references(e) {
		r.recorder.Event(ref, e.Type, e.Reason, e.Message)
	}
}

// Shutdown stops the broadcaster (events queued but not sent are lost).
func (r *Recorder) Shutdown() { r.broadcaster.Shutdown() }

// references are the objects an event goes to: the pod, and the VMI
// (what `kubectl describe vmi` shows) when known.
func references(e Event) []*corev1.ObjectReference {
	refs := []*corev1.ObjectReference{podRef(e.Pod)}
	if e.VMI != nil {
		refs = append(refs, &corev1.ObjectReference{
			APIVersion: pods.VMIAPIVersion, Kind: pods.VMIKind,
			Namespace: e.VMI.Namespace, Name: e.VMI.Name, UID: types.UID(e.VMI.UID),
		})
	}
	return refs
}

func podRef(p pods.Pod) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: types.UID(p.UID)}
}
