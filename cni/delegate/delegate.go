// Package delegate runs a delegated plugin (the IPAM plugin a configuration
// names) as the CNI specification's "Delegated plugins" section prescribes:
// the binary of that name found in CNI_PATH, executed with the caller's
// environment, CNI_COMMAND set to the operation, and the caller's own
// configuration on stdin. An ADD's result is read in the configuration's
// version; a failure's stdout is the delegate's CNI error.
//
// libcni's invoke package does the same, but it also imports OpenTelemetry
// and, through it, net/http and crypto/tls: about a third of the plugin's
// binary and more pages touched on every run, for trace propagation the
// inherited environment (TRACEPARENT included) already passes on.
package delegate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/types/create"
	"github.com/containernetworking/cni/pkg/version"
)

// maxOutput bounds what is kept of a delegate's stdout and stderr.
const maxOutput = 1 << 20

// Add runs plugin's ADD and returns its result.
func Add(ctx context.Context, plugin string, netconf []byte) (types.Result, error) {
	out, err := run(ctx, "ADD", plugin, netconf)
	if err != nil {
		return nil, err
	}
	confVersion, err := (&version.ConfigDecoder{}).Decode(netconf)
	if err != nil {
		return nil, err
	}
	resultVersion, err := resultVersion(out, confVersion)
	if err != nil {
		return nil, fmt.Errorf("plugin %s result: %w", plugin, err)
	}
	return create.Create(resultVersion, out)
}

// Run runs plugin for command: DEL, CHECK, STATUS or GC.
func Run(ctx context.Context, command, plugin string, netconf []byte) error {
	_, err := run(ctx, command, plugin, netconf)
	return err
}

// resultVersion is the result's cniVersion, or the configuration's when the
// result has none (plugins of spec 0.1.0 wrote none).
func resultVersion(out []byte, confVersion string) (string, error) {
	var v struct {
		CNIVersion *string `json:"cniVersion"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return "", err
	}
	if v.CNIVersion == nil || *v.CNIVersion == "" {
		return confVersion, nil
	}
	return *v.CNIVersion, nil
}

func run(ctx context.Context, command, plugin string, netconf []byte) ([]byte, error) {
	path, err := Find(plugin, filepath.SplitList(os.Getenv("CNI_PATH")))
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = withCommand(os.Environ(), command)
	cmd.Stdin = bytes.NewReader(netconf)
	stdout, stderr := &capped{max: maxOutput}, &capped{max: maxOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Run(); err != nil {
		return nil, pluginError(plugin, err, stdout.Bytes(), stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// Find returns the first executable regular file named plugin in paths.
func Find(plugin string, paths []string) (string, error) {
	if plugin == "" || plugin != filepath.Base(plugin) || plugin == "." || plugin == ".." {
		return "", fmt.Errorf("plugin name %q: want a file name without a directory", plugin)
	}
	if len(paths) == 0 {
		return "", errors.New("CNI_PATH is empty: no directory to find plugin " + plugin + " in")
	}
	for _, dir := range paths {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, plugin)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("plugin %s: %w", plugin, err)
		}
	}
	return "", fmt.Errorf("failed to find plugin %q in path %s", plugin, paths)
}

// withCommand is env with CNI_COMMAND set to command (and only once).
func withCommand(env []string, command string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if !strings.HasPrefix(e, "CNI_COMMAND=") {
			out = append(out, e)
		}
	}
	return append(out, "CNI_COMMAND="+command)
}

// pluginError is the delegate's CNI error from its stdout, or, when it
// printed none, the exit status with its stderr.
func pluginError(plugin string, runErr error, stdout, stderr []byte) error {
	var e types.Error
	if len(bytes.TrimSpace(stdout)) > 0 && json.Unmarshal(stdout, &e) == nil && (e.Code != 0 || e.Msg != "") {
		return &e
	}
	msg := strings.TrimSpace(string(stderr))
	if msg == "" {
		msg = strings.TrimSpace(string(stdout))
	}
	if msg == "" {
		return fmt.Errorf("plugin %s: %w", plugin, runErr)
	}
	return fmt.Errorf("plugin %s: %w: %s", plugin, runErr, msg)
}

// capped keeps the first max bytes written to it and drops the rest, so a
// delegate that floods its output cannot exhaust our memory.
type capped struct {
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		if len(p) > room {
			c.buf.Write(p[:room])
		} else {
			c.buf.Write(p)
		}
	}
	return len(p), nil
}

func (c *capped) Bytes() []byte { return c.buf.Bytes() }
