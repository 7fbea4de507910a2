// Package namecheck holds the spelling rules shared by the names and
// directories the configuration, the runtime and Kubernetes hand the plugin:
// a clean absolute directory (Dir) and a name drawn from a character set
// (Charset). Each field keeps its own rule and wording; only the checking is
// shared, so two fields that follow one rule cannot drift apart.
package namecheck

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Dir checks that dir is a clean absolute path other than /, without NUL or
// newline (it reaches the host's file system and the plugin runs as root).
// The error starts with field and names what is wrong.
func Dir(field, dir string) error {
	if err := Path(field, dir); err != nil {
		return err
	}
	if dir == "/" {
		return fmt.Errorf("%s must not be /", field)
	}
	return nil
}

// Path checks that p is a clean absolute path without NUL or newline.
// The error starts with field and names what is wrong.
func Path(field, p string) error {
	if p == "" {
		return fmt.Errorf("%s is empty", field)
	}
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%s %q must be an absolute path", field, p)
	}
	if filepath.Clean(p) != p {
		return fmt.Errorf("%s %q is not clean: use %q", field, p, filepath.Clean(p))
	}
	if strings.ContainsAny(p, "\x00\n") {
		return fmt.Errorf("%s %q contains a NUL or newline", field, p)
	}
	return nil
}

// Charset is the characters a kind of name may use: ASCII letters and
// digits, and the ASCII punctuation in Punct (not as the first character
// if PunctNotFirst).
type Charset struct {
	Punct         string
	PunctNotFirst bool
}

// Check returns an error naming field, s and the first character of s
// outside the set, nil if there is none. Length and emptiness are the
// caller's: their limits and wording differ per field.
func (c Charset) Check(field, s string) error {
	for i, r := range s {
		if !c.allows(i, r) {
			return fmt.Errorf("%s %q contains %q: use %s", field, s, r, c)
		}
	}
	return nil
}

func (c Charset) allows(i int, r rune) bool {
	if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
		return true
	}
	return r < 0x80 && strings.ContainsRune(c.Punct, r) && (i > 0 || !c.PunctNotFirst)
}

// String describes the set for an error message, e.g.
// "letters, digits, '-' or '_'".
func (c Charset) String() string {
	if c.Punct == "" {
		return "letters or digits"
	}
	quoted := make([]string, 0, len(c.Punct))
	for _, r := range c.Punct {
		quoted = append(quoted, fmt.Sprintf("%q", r))
	}
	if c.PunctNotFirst {
		return "letters, digits, and " + strings.Join(quoted, ", ") + " after the first character"
	}
	if len(quoted) == 1 {
		return "letters, digits or " + quoted[0]
	}
	last := len(quoted) - 1
	return "letters, digits, " + strings.Join(quoted[:last], ", ") + " or " + quoted[last]
}
