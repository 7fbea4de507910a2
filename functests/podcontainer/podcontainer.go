// Package podcontainer runs a command the way a container runtime runs a
// container of a pod, with what the tests need and nothing more: its own
// mount namespace laid out by a list of mounts (emptyDirs and subPaths are
// bind mounts of host directories), its own PID namespace (so a process that
// scans /proc, like virt-launcher-monitor looking for qemu-system, sees only
// its pod), the pod's network namespace, a uid/gid and ambient capabilities.
//
// The namespace is made by re-executing the current binary (/proc/self/exe)
// with CLONE_NEWNS|CLONE_NEWPID: that process, PID 1 of the container, first
// makes every mount private (nothing it mounts can propagate to the host,
// even when the host's / is shared for a kubelet), mounts, starts the command
// as its child with the configured credentials, forwards SIGTERM/SIGINT,
// reaps orphans and exits with the command's status. When it exits the
// kernel kills whatever is left in the PID namespace, and the mount
// namespace goes away with its last process: a container leaves no mount
// behind. Binaries that start containers must call Main first thing in main
// (or TestMain).
package podcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// envSpec carries the Spec to the re-executed binary.
const envSpec = "VHOSTUSER_PODCONTAINER_SPEC"

// Mount is one entry of the container's mount table, applied in order.
type Mount struct {
	// Type is "bind" (default), "tmpfs", "proc", "devpts" or "overlay".
	Type string `json:"type,omitempty"`
	// Source is the host path of a bind mount.
	Source string `json:"source,omitempty"`
	// Target is the path inside the container. A missing target is created
	// (a directory, or an empty file when Source is a file) - so only below
	// a tmpfs or bind mount of the container, never on the host's own tree.
	Target string `json:"target"`
	// Data is the file system's option string ("mode=755",
	// "lowerdir=a:b", ...).
	Data     string `json:"data,omitempty"`
	ReadOnly bool   `json:"readOnly,omitempty"`
}

// Symlink is created inside the container after the mounts.
type Symlink struct {
	Target, Path string
}

// Spec describes one container.
type Spec struct {
	Name   string    `json:"name"`
	Args   []string  `json:"args"` // Args[0] is an absolute path in the container's view
	Env    []string  `json:"env"`
	Dir    string    `json:"dir,omitempty"`
	UID    uint32    `json:"uid"`
	GID    uint32    `json:"gid"`
	Groups []uint32  `json:"groups,omitempty"`
	Caps   []uintptr `json:"caps,omitempty"`  // ambient capabilities of the command
	Netns  string    `json:"netns,omitempty"` // network namespace to join (a path)
	Mounts []Mount   `json:"mounts"`
	// Devices are character devices of the host's /dev (by name) created
	// after the mounts, for a container that mounts a tmpfs on /dev.
	Devices  []string  `json:"devices,omitempty"`
	Symlinks []Symlink `json:"symlinks,omitempty"`
}

// Container is a started container.
type Container struct {
	Spec Spec
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// Start starts the container; its init's and command's output go to out.
func Start(spec Spec, out io.Writer) (*Container, error) {
	if len(spec.Args) == 0 {
		return nil, errors.New("podcontainer: no command")
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"podcontainer-init:" + spec.Name}
	cmd.Env = []string{envSpec + "=" + string(b)}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		// The container must not outlive a test binary killed by a timeout.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("podcontainer: start %s: %w", spec.Name, err)
	}
	c := &Container{Spec: spec, cmd: cmd, done: make(chan struct{})}
	go func() { c.err = cmd.Wait(); close(c.done) }()
	return c, nil
}

// Pid is the host pid of the container's init (PID 1 inside).
func (c *Container) Pid() int { return c.cmd.Process.Pid }

// Done is closed when the container has exited.
func (c *Container) Done() <-chan struct{} { return c.done }

// Err is the exit error once Done is closed (nil: status 0).
func (c *Container) Err() error { return c.err }

// Signal sends sig to the container's init, which forwards SIGTERM and
// SIGINT to the command.
func (c *Container) Signal(sig os.Signal) error { return c.cmd.Process.Signal(sig) }

// Stop sends SIGTERM and waits up to grace for the container to exit, then
// kills it (and with it everything in its PID namespace). It returns the
// exit error and whether the exit was graceful.
func (c *Container) Stop(grace time.Duration) (graceful bool, err error) {
	select {
	case <-c.done:
		return true, c.err
	default:
	}
	_ = c.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return true, c.err
	case <-time.After(grace):
	}
	_ = c.cmd.Process.Kill()
	<-c.done
	return false, c.err
}

// Kill kills the container at once.
func (c *Container) Kill() {
	select {
	case <-c.done:
		return
	default:
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}
