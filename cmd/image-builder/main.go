// Command image-builder writes the project's OCI image archives from the
// static binaries of make build, without a container engine.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/internal/images"
)

func main() {
	bin := flag.String("bin", "bin", "directory with the static binaries (make build)")
	out := flag.String("out", "bin/images", "output directory for the <name>.tar OCI archives")
	version := flag.String("version", "dev", "version label (org.opencontainers.image.version)")
	tag := flag.String("tag", "", "image tag (default: the version, with characters a tag cannot hold replaced by '-')")
	prefix := flag.String("prefix", images.DefaultRegistryPrefix, "repository prefix of the image names")
	revision := flag.String("revision", "unknown", "source revision label (git commit)")
	source := flag.String("source", "https://github.com/kubevirt-vhostuser/vhostuser", "source label")
	epoch := flag.Int64("source-date-epoch", -1, "timestamp of every file and the image, seconds since 1970 (default: $SOURCE_DATE_EPOCH, else 0)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(*bin, *out, *version, *tag, *prefix, *revision, *source, *epoch); err != nil {
		log.Error("image build failed", "err", err)
		os.Exit(1)
	}
}

func run(bin, out, version, tag, prefix, revision, source string, epoch int64) error {
	if epoch < 0 {
		epoch = 0
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil || v < 0 {
				return fmt.Errorf("SOURCE_DATE_EPOCH %q is not a non-negative integer", s)
			}
			epoch = v
		}
	}
	if tag == "" {
		t, err := images.Tag(version)
		if err != nil {
			return err
		}
		tag = t
	}
	created := time.Unix(epoch, 0).UTC()
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	meta := images.Meta{Version: version, Revision: revision, Source: source, Created: created}
	for _, spec := range images.Project(bin) {
		res, err := images.BuildArchive(spec, meta, prefix+"/"+spec.Name+":"+tag, filepath.Join(out, spec.Name+".tar"))
		if err != nil {
			return err
		}
		fmt.Printf("%s\t%s\tdigest=%s\tarchive=%s\tarchive_bytes=%d\tlayers_bytes=%d\n",
			spec.Name, res.Ref, res.Digest, res.Archive, res.ArchiveSize, res.LayersSize)
	}
	return nil
}
