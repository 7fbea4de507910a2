package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/kubevirt-vhostuser/vhostuser/cni/config"
)

// loadNode reads the node configuration the installer writes: the same file
// and rules as the plugin's, so the agent looks for ports, short links and
// socket directories where the plugin made them. On a new node the agent
// may start before the installer has written the file: it waits for it
// (readiness stays false meanwhile) instead of guessing the defaults, which
// on a node with other paths would point at the wrong directories. An empty
// path means the built-in defaults.
func loadNode(ctx context.Context, path string, log *slog.Logger) (config.NodeConf, error) {
	if path == "" {
		return config.ParseNode(nil)
	}
	const poll = 2 * time.Second
	for logged := false; ; {
		_, err := os.Stat(path)
		if err == nil {
			return config.LoadNode(path)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return config.NodeConf{}, fmt.Errorf("node configuration %s: %w", path, err)
		}
		if !logged {
			log.Info("waiting for the node configuration the installer writes", "file", path)
			logged = true
		}
		select {
		case <-ctx.Done():
			return config.NodeConf{}, fmt.Errorf("node configuration %s: not written before shutdown", path)
		case <-time.After(poll):
		}
	}
}
