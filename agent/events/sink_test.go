package events

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The sink's scheme decodes what the API server answers an event write
// with: the Event, or a Status on failure.
func TestCoreScheme(t *testing.T) {
	s, err := coreScheme()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"Event", "Status", "ListOptions"} {
		if gvk := corev1.SchemeGroupVersion.WithKind(kind); !s.Recognizes(gvk) {
			t.Errorf("the sink's scheme does not know %s", gvk)
		}
	}
}
