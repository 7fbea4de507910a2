// Package virtxml validates domain XML against libvirt's own RNG schema with
// virt-xml-validate (libvirt-clients + libxml2-utils).
package virtxml

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
)

// emptySysinfo matches the empty <bios>, <baseBoard> and <chassis> elements
// KubeVirt's converter always writes into <sysinfo>: libvirt's parser accepts
// them, its schema does not, so they are removed before validating (and
// nothing else is).
var emptySysinfo = regexp.MustCompile(`<(bios|baseBoard|chassis)\s*(/>|>\s*</(bios|baseBoard|chassis)>)`)

// StripKubeVirtSysinfo removes exactly those empty elements.
func StripKubeVirtSysinfo(domainXML string) string {
	return emptySysinfo.ReplaceAllString(domainXML, "")
}

// Validate runs virt-xml-validate on domainXML (after StripKubeVirtSysinfo)
// and returns its output in the error when the document is invalid.
func Validate(ctx context.Context, domainXML string) error {
	bin, err := exec.LookPath("virt-xml-validate")
	if err != nil {
		return fmt.Errorf("virt-xml-validate not found (install libvirt-clients and libxml2-utils: hack/install-deps.sh): %w", err)
	}
	if _, err := exec.LookPath("xmllint"); err != nil {
		return fmt.Errorf("xmllint not found (install libxml2-utils: hack/install-deps.sh): %w", err)
	}
	// virt-xml-validate cannot read /dev/stdin.
	f, err := os.CreateTemp("", "domain-*.xml")
	if err != nil {
		return fmt.Errorf("temp file for validation: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(StripKubeVirtSysinfo(domainXML)); err != nil {
		f.Close()
		return fmt.Errorf("write temp file for validation: %w", err)
	}
	f.Close()
	out, err := exec.CommandContext(ctx, bin, f.Name(), "domain").CombinedOutput()
	if err != nil {
		return fmt.Errorf("virt-xml-validate: %w: %s", err, bytes.TrimSpace(out))
	}
	return nil
}
