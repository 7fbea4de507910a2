package namecheck

import "testing"

func TestDir(t *testing.T) {
	for _, tt := range []struct{ dir, want string }{
		{"/var/lib/kubelet", ""},
		{"/a", ""},
		{"", "f is empty"},
		{"var/lib", `f "var/lib" must be an absolute path`},
		{"/var/../etc", `f "/var/../etc" is not clean: use "/etc"`},
		{"/var/", `f "/var/" is not clean: use "/var"`},
		{"/", "f must not be /"},
		{"/a\nb", `f "/a\nb" contains a NUL or newline`},
		{"/a\x00b", `f "/a\x00b" contains a NUL or newline`},
		// The first problem wins.
		{"/a/../b\n", `f "/a/../b\n" is not clean: use "/b\n"`},
	} {
		t.Run(tt.dir, func(t *testing.T) {
			if got := errText(Dir("f", tt.dir)); got != tt.want {
				t.Fatalf("Dir(%q) = %q, want %q", tt.dir, got, tt.want)
			}
		})
	}
	if err := Path("f", "/"); err != nil {
		t.Fatalf("Path(/) = %v, want nil", err)
	}
}

func TestCharset(t *testing.T) {
	token := Charset{Punct: "-_"}
	bridge := Charset{Punct: "-_."}
	network := Charset{Punct: "-_.", PunctNotFirst: true}
	for _, tt := range []struct {
		name string
		c    Charset
		s    string
		want string
	}{
		{"token ok", token, "0f1d3b4e-58a4_X", ""},
		{"token dot", token, "a.b", `"v" "a.b" contains '.': use letters, digits, '-' or '_'`},
		{"token slash first", token, "/a", `"v" "/a" contains '/': use letters, digits, '-' or '_'`},
		{"bridge ok", bridge, "br-dpdk.0_1", ""},
		{"bridge space", bridge, "br 0", `"v" "br 0" contains ' ': use letters, digits, '-', '_' or '.'`},
		{"bridge non-ASCII", bridge, "brü", `"v" "brü" contains 'ü': use letters, digits, '-', '_' or '.'`},
		{"bridge invalid UTF-8", bridge, "b\xff", `"v" "b\xff" contains '�': use letters, digits, '-', '_' or '.'`},
		{"network ok", network, "a-b_c.d", ""},
		{"network punct first", network, "-a", `"v" "-a" contains '-': use letters, digits, and '-', '_', '.' after the first character`},
		{"network punct later", network, "a/b", `"v" "a/b" contains '/': use letters, digits, and '-', '_', '.' after the first character`},
		{"empty is the caller's", bridge, "", ""},
		{"alnum only", Charset{}, "a-", `"v" "a-" contains '-': use letters or digits`},
		{"one punct", Charset{Punct: ":"}, "a-", `"v" "a-" contains '-': use letters, digits or ':'`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := errText(tt.c.Check(`"v"`, tt.s)); got != tt.want {
				t.Fatalf("Check(%q) = %q, want %q", tt.s, got, tt.want)
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
