// Command busybox-image writes the OCI archive of the cluster's node image:
// Debian's static busybox, whose entrypoint sleeps forever. make cluster-up
// imports it into containerd as the sandbox ("pause") image and the image of
// the functests' plain pods (command /bin/busybox sh -c ...), so the cluster
// needs no registry.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/internal/images"
)

func main() {
	ref := flag.String("ref", "", "image reference to store in the archive (required)")
	out := flag.String("out", "", "archive to write (required)")
	busybox := flag.String("busybox", "/bin/busybox", "static busybox binary (Debian busybox-static)")
	flag.Parse()
	if *ref == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "busybox-image: -ref and -out are required")
		os.Exit(2)
	}
	spec := images.Spec{
		Name:        "busybox",
		Title:       "vhostuser cluster node image",
		Description: "static busybox: sandbox image and functest pod image",
		Files:       []images.File{{Path: "/bin/busybox", Source: *busybox, Mode: 0o755, Static: true}},
		Entrypoint:  []string{"/bin/busybox", "sleep", "inf"},
		Env:         []string{"PATH=/bin"},
	}
	meta := images.Meta{Version: "1", Revision: "unknown", Source: "debian busybox-static", Created: time.Unix(0, 0)}
	res, err := images.BuildArchive(spec, meta, *ref, *out)
	if err != nil {
		slog.Error("busybox image", "err", err)
		os.Exit(1)
	}
	fmt.Printf("%s\tdigest=%s\tarchive=%s\n", res.Ref, res.Digest, res.Archive)
}
