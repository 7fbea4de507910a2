package launcherpod

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	v1 "kubevirt.io/api/core/v1"
	kvlog "kubevirt.io/client-go/log"
	notifyserver "kubevirt.io/kubevirt/pkg/virt-handler/notify-server"
	"kubevirt.io/kubevirt/pkg/virt-handler/notify-server/pipe"
	"kubevirt.io/kubevirt/pkg/virt-launcher/virtwrap/api"
)

// Handler is the part of virt-handler the pods talk to: KubeVirt's own
// notify server (domain-notify.sock in Dir), which receives the domain
// events every virt-launcher sends, and per pod KubeVirt's notify pipe,
// which virt-handler puts into the pod's /var/run/kubevirt as
// domain-notify-pipe.sock and proxies to the notify server.
type Handler struct {
	Dir   string
	store cache.Store
	stop  chan struct{}
	done  chan error

	mu      sync.Mutex
	changed chan struct{}
	history map[string][]DomainEvent // by VMI name
}

// DomainEvent is one event virt-launcher sent about a domain.
type DomainEvent struct {
	Type   watch.EventType
	Status api.LifeCycle
	Reason api.StateChangeReason
	At     time.Time
}

// StartHandler starts the notify server in dir.
func StartHandler(dir string) (*Handler, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	h := &Handler{
		Dir:     dir,
		store:   cache.NewStore(cache.MetaNamespaceKeyFunc),
		stop:    make(chan struct{}),
		done:    make(chan error, 1),
		changed: make(chan struct{}),
		history: map[string][]DomainEvent{},
	}
	events := make(chan watch.Event, 100)
	// The recorder only turns virt-launcher's Kubernetes events into
	// strings; there is no API server to send them to.
	recorder := record.NewFakeRecorder(1000)
	go func() {
		for range recorder.Events {
		}
	}()
	go func() { h.done <- notifyserver.RunServer(dir, h.stop, events, recorder, h.store) }()
	go func() {
		for e := range events {
			d, ok := e.Object.(*api.Domain)
			if !ok {
				continue
			}
			h.mu.Lock()
			h.history[d.ObjectMeta.Name] = append(h.history[d.ObjectMeta.Name],
				DomainEvent{Type: e.Type, Status: d.Status.Status, Reason: d.Status.Reason, At: time.Now()})
			close(h.changed)
			h.changed = make(chan struct{})
			h.mu.Unlock()
		}
	}()
	sock := filepath.Join(dir, "domain-notify.sock")
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(sock); err == nil {
			return h, nil
		}
		select {
		case err := <-h.done:
			return nil, fmt.Errorf("notify server: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("notify server socket %s did not appear", sock)
}

// Register lets the notify server resolve a VMI's Kubernetes events.
func (h *Handler) Register(vmi *v1.VirtualMachineInstance) { _ = h.store.Add(vmi) }

// Events returns the events received for the VMI so far.
func (h *Handler) Events(vmiName string) []DomainEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]DomainEvent(nil), h.history[vmiName]...)
}

// WaitFor waits for an event of the VMI's domain, from the since-th on
// (0: all events; len(Events) at some point: the events after it), that
// satisfies ok.
func (h *Handler) WaitFor(ctx context.Context, vmiName string, since int, ok func(DomainEvent) bool) (DomainEvent, error) {
	for {
		h.mu.Lock()
		events := h.history[vmiName]
		if since > len(events) {
			since = len(events)
		}
		for _, e := range events[since:] {
			if ok(e) {
				h.mu.Unlock()
				return e, nil
			}
		}
		changed := h.changed
		h.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return DomainEvent{}, fmt.Errorf("domain events of %s: %v: %w", vmiName, h.Events(vmiName), ctx.Err())
		}
	}
}

// Stop stops the notify server.
func (h *Handler) Stop() {
	close(h.stop)
	select {
	case <-h.done:
	case <-time.After(15 * time.Second):
	}
}

// injectNotifyPipe listens on domain-notify-pipe.sock in the pod's
// /var/run/kubevirt (publicDir on the host), owned by the pod's user like
// virt-handler makes it for non-root VMIs, and proxies every connection to
// the notify server with KubeVirt's pipe code.
func (h *Handler) injectNotifyPipe(ctx context.Context, publicDir string, uid, gid int) error {
	sock := filepath.Join(publicDir, "domain-notify-pipe.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("notify pipe: %w", err)
	}
	if err := os.Chown(sock, uid, gid); err != nil {
		l.Close()
		return fmt.Errorf("notify pipe: %w", err)
	}
	logger := kvlog.Log.With("pipe", sock)
	connect := pipe.NewConnectToNotifyFunc(h.Dir)
	go pipe.Pipe(ctx, pipe.ChanFromListener(ctx, logger, l), func(c net.Conn) { pipe.Proxy(logger, c, connect) })
	return nil
}
