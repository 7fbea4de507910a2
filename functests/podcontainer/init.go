package podcontainer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// Main runs the container init when this process was started by Start, and
// returns at once otherwise. Call it first thing in main or TestMain.
func Main() {
	raw, ok := os.LookupEnv(envSpec)
	if !ok {
		return
	}
	os.Exit(initMain(raw))
}

func initMain(raw string) int {
	// setns applies to the calling thread only, and the command is forked
	// from it: keep the main goroutine on this thread.
	runtime.LockOSThread()
	var spec Spec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "podcontainer init: %v\n", err)
		return 127
	}
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "podcontainer init %s: %v\n", spec.Name, err)
		return 127
	}
	// Open the network namespace before the mounts hide /run/netns.
	netns := -1
	if spec.Netns != "" {
		fd, err := unix.Open(spec.Netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(fmt.Errorf("open netns %s: %w", spec.Netns, err))
		}
		netns = fd
	}
	// The host's device numbers, before a tmpfs hides them.
	devs := map[string]uint64{}
	for _, d := range spec.Devices {
		var st unix.Stat_t
		if err := unix.Stat("/dev/"+d, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
			return fail(fmt.Errorf("device /dev/%s: not a character device (%v)", d, err))
		}
		devs[d] = st.Rdev
	}
	// Before any mount: nothing below may propagate to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fail(fmt.Errorf("make / rprivate: %w", err))
	}
	for _, m := range spec.Mounts {
		if err := mount(m); err != nil {
			return fail(err)
		}
	}
	for _, d := range spec.Devices {
		if err := unix.Mknod("/dev/"+d, unix.S_IFCHR|0o666, int(devs[d])); err != nil {
			return fail(fmt.Errorf("mknod /dev/%s: %w", d, err))
		}
		if err := os.Chmod("/dev/"+d, 0o666); err != nil { // past the umask
			return fail(err)
		}
	}
	for _, l := range spec.Symlinks {
		if err := os.Symlink(l.Target, l.Path); err != nil {
			return fail(fmt.Errorf("symlink %s: %w", l.Path, err))
		}
	}
	if netns >= 0 {
		if err := unix.Setns(netns, unix.CLONE_NEWNET); err != nil {
			return fail(fmt.Errorf("join netns %s: %w", spec.Netns, err))
		}
		unix.Close(netns)
	}

	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	cmd := exec.Command(spec.Args[0], spec.Args[1:]...)
	cmd.Env, cmd.Dir = spec.Env, spec.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential:  &syscall.Credential{Uid: spec.UID, Gid: spec.GID, Groups: spec.Groups},
		AmbientCaps: spec.Caps,
	}
	if err := cmd.Start(); err != nil {
		return fail(err)
	}
	child := cmd.Process.Pid
	// The command's status comes from our own wait4(-1) loop, which also
	// reaps orphans re-parented to us: never call cmd.Wait.
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			_ = syscall.Kill(child, sig.(syscall.Signal))
			continue
		}
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if err != nil || pid <= 0 {
				break
			}
			if pid == child {
				if ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return ws.ExitStatus()
			}
		}
	}
	return 127
}

func mount(m Mount) error {
	switch m.Type {
	case "", "bind":
		st, err := os.Stat(m.Source)
		if err != nil {
			return fmt.Errorf("bind %s: %w", m.Source, err)
		}
		if err := ensureTarget(m.Target, !st.IsDir()); err != nil {
			return err
		}
		if err := unix.Mount(m.Source, m.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s on %s: %w", m.Source, m.Target, err)
		}
		if m.ReadOnly {
			if err := unix.Mount("", m.Target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				return fmt.Errorf("remount %s read-only: %w", m.Target, err)
			}
		}
		return nil
	case "tmpfs", "proc", "devpts", "overlay":
		if err := ensureTarget(m.Target, false); err != nil {
			return err
		}
		flags := uintptr(unix.MS_NOSUID)
		switch m.Type {
		case "proc":
			flags |= unix.MS_NODEV | unix.MS_NOEXEC
		case "devpts":
			flags |= unix.MS_NOEXEC
		case "overlay":
			flags = 0
		}
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		if err := unix.Mount(m.Type, m.Target, m.Type, flags, m.Data); err != nil {
			return fmt.Errorf("mount %s on %s (%s): %w", m.Type, m.Target, m.Data, err)
		}
		return nil
	}
	return fmt.Errorf("mount %s: unknown type %q", m.Target, m.Type)
}

func ensureTarget(path string, file bool) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if !file {
		return os.MkdirAll(path, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}
