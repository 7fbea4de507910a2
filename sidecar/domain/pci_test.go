package domain

import "testing"

func TestParsePCI(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"0000:00:1a.0", true}, {"0000:81:01.7", true}, {"ffff:ff:1f.7", true},
		{"0000:00:20.0", false}, {"0000:00:1a.8", false}, {"00:1a.0", false}, {"", false}, {"0000:00:1a.0\n", false},
	} {
		_, err := parsePCI(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parsePCI(%q) err=%v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
