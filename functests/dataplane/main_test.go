package dataplane

import (
	"os"
	"testing"

	"github.com/kubevirt-vhostuser/vhostuser/functests/podcontainer"
)

// TestMain lets the test binary serve as the init of the pods' containers.
func TestMain(m *testing.M) {
	podcontainer.Main()
	os.Exit(m.Run())
}
