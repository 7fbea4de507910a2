// Command guest-files copies the test guest's kernel and initramfs (package
// guest, built or taken from its cache) into a directory as vmlinuz and
// initrd.img: the content of the kernelBoot container image that
// hack/cluster/kubevirt.sh assembles for the cluster's VM tests.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/kubevirt-vhostuser/vhostuser/functests/guest"
)

func main() {
	out := flag.String("out", "", "directory to write vmlinuz and initrd.img into (required)")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "guest-files: -out is required")
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	img, _, err := guest.Prepare(context.Background(), guest.CacheDir(), log)
	if err == nil {
		err = copyFile(img.Kernel, filepath.Join(*out, "vmlinuz"))
	}
	if err == nil {
		err = copyFile(img.Initrd, filepath.Join(*out, "initrd.img"))
	}
	if err != nil {
		log.Error("guest files", "err", err)
		os.Exit(1)
	}
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	// World-readable: virt-handler mounts them into the launcher, where QEMU
	// runs as uid 107.
	o, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(o, in); err != nil {
		o.Close()
		return err
	}
	return o.Close()
}
