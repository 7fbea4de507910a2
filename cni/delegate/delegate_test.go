package delegate

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestFind(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	write := func(p string, mode os.FileMode) {
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(a, "noexec"), 0o644)
	write(filepath.Join(b, "noexec"), 0o755)
	write(filepath.Join(a, "first"), 0o755)
	write(filepath.Join(b, "first"), 0o755)
	if err := os.Mkdir(filepath.Join(a, "isdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		plugin string
		paths  []string
		want   string // path, or "" for an error containing errHas
		errHas string
	}{
		{"first", []string{a, b}, filepath.Join(a, "first"), ""},
		{"first", []string{"", b}, filepath.Join(b, "first"), ""},
		{"noexec", []string{a, b}, filepath.Join(b, "noexec"), ""}, // a's is not executable
		{"isdir", []string{a}, "", "failed to find"},
		{"missing", []string{a, b}, "", "failed to find"},
		{"first", nil, "", "CNI_PATH is empty"},
		{"../first", []string{a}, "", "without a directory"},
		{"a/first", []string{a}, "", "without a directory"},
		{"", []string{a}, "", "without a directory"},
		{"..", []string{a}, "", "without a directory"},
	} {
		got, err := Find(tc.plugin, tc.paths)
		if tc.want != "" {
			if err != nil || got != tc.want {
				t.Errorf("Find(%q, %v) = %q, %v; want %q", tc.plugin, tc.paths, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("Find(%q, %v) = %q, %v; want an error with %q", tc.plugin, tc.paths, got, err, tc.errHas)
		}
	}
}

func TestWithCommand(t *testing.T) {
	got := withCommand([]string{"A=1", "CNI_COMMAND=ADD", "CNI_PATH=/x", "CNI_COMMAND=CHECK"}, "DEL")
	want := []string{"A=1", "CNI_PATH=/x", "CNI_COMMAND=DEL"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("withCommand = %v, want %v", got, want)
	}
}

func TestResultVersion(t *testing.T) {
	for _, tc := range []struct {
		out, conf, want string
		err             bool
	}{
		{`{"cniVersion":"1.0.0","ips":[]}`, "1.1.0", "1.0.0", false},
		{`{"ips":[]}`, "0.4.0", "0.4.0", false},
		{`{"cniVersion":""}`, "1.1.0", "1.1.0", false},
		{`not json`, "1.1.0", "", true},
		{``, "1.1.0", "", true},
	} {
		got, err := resultVersion([]byte(tc.out), tc.conf)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("resultVersion(%q, %q) = %q, %v", tc.out, tc.conf, got, err)
		}
	}
}

func TestPluginError(t *testing.T) {
	exitErr := &exec.ExitError{}
	// The delegate's own CNI error wins, code and all.
	err := pluginError("host-local", exitErr, []byte(`{"cniVersion":"1.0.0","code":11,"msg":"no addresses","details":"range full"}`), []byte("noise"))
	var e *types.Error
	if !errors.As(err, &e) || e.Code != 11 || e.Msg != "no addresses" || e.Details != "range full" {
		t.Errorf("CNI error on stdout: %#v", err)
	}
	// No CNI error: the exit status and stderr, naming the plugin.
	err = pluginError("static", exitErr, []byte("garbage"), []byte("panic: boom\n"))
	if errors.As(err, &e) || !strings.Contains(err.Error(), "plugin static") || !strings.Contains(err.Error(), "panic: boom") {
		t.Errorf("stderr error: %v", err)
	}
	err = pluginError("static", exitErr, []byte("only stdout"), nil)
	if !strings.Contains(err.Error(), "only stdout") {
		t.Errorf("stdout fallback: %v", err)
	}
	err = pluginError("static", exitErr, nil, nil)
	if !errors.Is(err, exitErr) || !strings.Contains(err.Error(), "plugin static") {
		t.Errorf("bare error: %v", err)
	}
	// JSON that is not an error object is not taken for one.
	if err = pluginError("x", exitErr, []byte(`{"ips":[]}`), []byte("real reason")); !strings.Contains(err.Error(), "real reason") {
		t.Errorf("non-error JSON: %v", err)
	}
}

func TestCapped(t *testing.T) {
	c := &capped{max: 5}
	for _, s := range []string{"abc", "defg", "hij"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v: a writer must report all of p written", s, n, err)
		}
	}
	if got := string(c.Bytes()); got != "abcde" {
		t.Errorf("kept %q, want %q", got, "abcde")
	}
}
