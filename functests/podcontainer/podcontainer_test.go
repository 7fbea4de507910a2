package podcontainer

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

// TestContainer runs a shell in a container and checks what it sees: PID 1
// is its init, the bind mount and device are there, /dev/kvm is not, it runs
// as the configured user, and none of its mounts shows up on the host.
func TestContainer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("podcontainer needs root (mount and PID namespaces)")
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("from-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join("/var/run", "podcontainer-test-"+filepath.Base(src))
	out, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Start(Spec{
		Name: "t", UID: 107, GID: 107,
		Args: []string{"/bin/sh", "-c", `echo pid=$PPID uid=$(id -u) gid=$(id -g); ls /dev; cat ` + marker + `/hello; sleep 2; exit 3`},
		Env:  []string{"PATH=/usr/bin:/bin"},
		Mounts: []Mount{
			{Type: "tmpfs", Target: "/run", Data: "mode=755"},
			{Type: "proc", Target: "/proc"},
			{Type: "tmpfs", Target: "/dev", Data: "mode=755"},
			{Source: src, Target: marker, ReadOnly: true},
		},
		Devices: []string{"null"},
	}, out)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Kill()
	time.Sleep(time.Second)
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), marker) {
		t.Errorf("the container's mount %s is visible on the host", marker)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("mount target %s created on the host: %v", marker, err)
	}
	<-c.Done()
	var ee *exec.ExitError
	if !errors.As(c.Err(), &ee) || ee.ExitCode() != 3 {
		t.Errorf("exit %v, want status 3 passed through", c.Err())
	}
	b, _ := os.ReadFile(out.Name())
	got := string(b)
	for _, want := range []string{"pid=1 uid=107 gid=107\n", "\nnull\n", "from-host\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "kvm") {
		t.Errorf("/dev/kvm visible:\n%s", got)
	}
}
