package events

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// requestTimeout bounds one write; the broadcaster retries a failed one.
const requestTimeout = 10 * time.Second

// sink is the broadcaster's EventSink on core/v1 events, with a REST client
// that knows only the core group. client-go's typed clients would do the
// same, but their package links the scheme of every API group (a third of
// the agent's binary, resident on every node).
type sink struct{ c rest.Interface }

// coreScheme holds the core/v1 types, for the sink's codec and for the
// recorder's object references.
func coreScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	// core/v1's registration adds the meta/v1 types (Status, ListOptions) too.
	if err := corev1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

func newSink(cfg *rest.Config, s *runtime.Scheme) (*sink, error) {
	c := rest.CopyConfig(cfg)
	c.APIPath = "/api"
	c.GroupVersion = &corev1.SchemeGroupVersion
	c.NegotiatedSerializer = serializer.NewCodecFactory(s).WithoutConversion()
	c.ContentType = runtime.ContentTypeJSON
	if c.Timeout == 0 || c.Timeout > requestTimeout {
		c.Timeout = requestTimeout
	}
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		return nil, fmt.Errorf("events client: %w", err)
	}
	return &sink{c: rc}, nil
}

func (s *sink) Create(e *corev1.Event) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := s.c.Post().Namespace(e.Namespace).Resource("events").Body(e).Do(context.Background()).Into(out)
	return out, err
}

func (s *sink) Update(e *corev1.Event) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := s.c.Put().Namespace(e.Namespace).Resource("events").Name(e.Name).Body(e).Do(context.Background()).Into(out)
	return out, err
}

func (s *sink) Patch(old *corev1.Event, data []byte) (*corev1.Event, error) {
	out := &corev1.Event{}
	err := s.c.Patch(types.StrategicMergePatchType).Namespace(old.Namespace).Resource("events").Name(old.Name).
		Body(data).Do(context.Background()).Into(out)
	return out, err
}
