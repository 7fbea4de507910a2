// Command test-only-msix-vectors0 is a TEST-ONLY hook (see package
// testonlyhook): installed as "onDefineDomain" in the PATH of KubeVirt's
// sidecar-shim, which calls it as
//
//	onDefineDomain --vmi <VMI JSON> --domain <domain XML>
//
// and passes what it prints to virt-launcher. It logs one line per call on
// stderr with the vhost-user interfaces it received.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/kubevirt-vhostuser/vhostuser/functests/testonlyhook"
)

func main() {
	fs := flag.NewFlagSet("onDefineDomain", flag.ContinueOnError)
	_ = fs.String("vmi", "", "VMI JSON")
	domain := fs.String("domain", "", "domain XML")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	out, seen, err := testonlyhook.AddVectorsZero(*domain)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test-only-msix-vectors0:", err)
		os.Exit(1)
	}
	for _, i := range seen {
		fmt.Fprintf(os.Stderr, "test-only-msix-vectors0: vhostuser alias=%s path=%s mode=%s\n", i.Alias, i.Path, i.Mode)
	}
	fmt.Fprintf(os.Stderr, "test-only-msix-vectors0: define with %d vhostuser interfaces\n", len(seen))
	fmt.Print(out)
}
