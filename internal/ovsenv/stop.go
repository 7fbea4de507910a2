package ovsenv

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Stop stops both daemons, deletes the network namespace and (unless
// Options.KeepDir) the instance directory. It is safe to call twice.
func (o *OVS) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var errs []error
	errs = append(errs, o.StopVswitchd(ctx), o.StopDB(ctx))
	if o.FilePrefix != "" && o.Pid("ovs-vswitchd") == 0 {
		// DPDK's runtime files of this instance's unique prefix.
		errs = append(errs, os.RemoveAll(filepath.Join(DPDKRuntimeDir, o.FilePrefix)))
	}
	if o.Netns != "" {
		if _, err := o.run(ctx, "ip", "netns", "del", o.Netns); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
		o.Netns = ""
	}
	if !o.opts.KeepDir && o.Dir != "" {
		errs = append(errs, os.RemoveAll(o.Dir))
	}
	return errors.Join(errs...)
}
