package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubevirt-vhostuser/vhostuser/internal/atomicfile"
)

// deviceInfo is the Network Plumbing WG device-info document (version 1.1.0)
// for a vhost-user interface. It is declared here rather than imported from
// the NAD client, whose types package pulls the Kubernetes API machinery into
// a binary that runs once per pod interface.
type deviceInfo struct {
	Type      string     `json:"type"`
	Version   string     `json:"version"`
	VhostUser *vhostInfo `json:"vhost-user"`
}

type vhostInfo struct {
	// Mode is the role of the pod's end: QEMU is the vhost-user server.
	Mode string `json:"mode"`
	Path string `json:"path"`
}

const (
	deviceInfoType    = "vhost-user"
	deviceInfoVersion = "1.1.0"
	deviceInfoMode    = "server"
)

// belowNoSymlink fails when file is not below root or when a component
// between root and file (file included) is a symlink. The configuration
// already confines file to root; this keeps a link in root's tree from
// sending root's writes elsewhere.
func belowNoSymlink(root, file string) error {
	rel, err := filepath.Rel(root, file)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("device-info file %s is not inside %s", file, root)
	}
	p := root
	for _, part := range strings.Split(rel, "/") {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("device-info path %s: %w", p, err)
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("device-info path %s is a symlink: refusing to follow it", p)
		}
	}
	return nil
}

// writeDeviceInfo writes the document atomically (temporary file, rename)
// below root, following no symlink there.
func writeDeviceInfo(root, file, computeSocket string) error {
	if err := belowNoSymlink(root, file); err != nil {
		return err
	}
	b, err := json.Marshal(deviceInfo{Type: deviceInfoType, Version: deviceInfoVersion,
		VhostUser: &vhostInfo{Mode: deviceInfoMode, Path: computeSocket}})
	if err != nil {
		return err
	}
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("device-info directory %s: %w", dir, err)
	}
	if err := removeDeviceInfoTemps(file); err != nil {
		return err
	}
	// The temporary name is ".<name>.<digits>", the form
	// removeDeviceInfoTemps removes; it keeps CreateTemp's mode (0600).
	if err := atomicfile.WriteFile(file, b, atomicfile.Options{TempPattern: "." + filepath.Base(file) + ".*"}); err != nil {
		return fmt.Errorf("write device-info %s: %w", file, err)
	}
	return nil
}

// removeDeviceInfo removes the file only when it is the document we wrote.
func removeDeviceInfo(root, file, computeSocket string) error {
	if err := belowNoSymlink(root, file); err != nil {
		return err
	}
	if err := removeDeviceInfoTemps(file); err != nil {
		return err
	}
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read device-info %s: %w", file, err)
	}
	var d deviceInfo
	if json.Unmarshal(b, &d) != nil || d.Type != deviceInfoType || d.VhostUser == nil || d.VhostUser.Path != computeSocket {
		return nil // not ours
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove device-info %s: %w", file, err)
	}
	return nil
}

// removeDeviceInfoTemps removes the temporary files a run killed inside
// writeDeviceInfo left: ".<name>.<digits>" (os.CreateTemp), regular files.
func removeDeviceInfoTemps(file string) error {
	dir, prefix := filepath.Dir(file), "."+filepath.Base(file)+"."
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("device-info directory %s: %w", dir, err)
	}
	var errs []error
	for _, e := range ents {
		rnd, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || rnd == "" || strings.Trim(rnd, "0123456789") != "" || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove temporary device-info %s: %w", e.Name(), err))
		}
	}
	return errors.Join(errs...)
}
