package virtxml

import "testing"

func TestStripKubeVirtSysinfo(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty pairs", `<sysinfo type="smbios"><bios></bios><baseBoard></baseBoard><chassis></chassis></sysinfo>`, `<sysinfo type="smbios"></sysinfo>`},
		{"self-closing", `<sysinfo><bios/><chassis /></sysinfo>`, `<sysinfo></sysinfo>`},
		{"with whitespace", "<bios>\n  </bios>", ""},
		{"non-empty kept", `<bios><entry name="vendor">x</entry></bios>`, `<bios><entry name="vendor">x</entry></bios>`},
		{"other elements kept", `<system></system><biosx></biosx>`, `<system></system><biosx></biosx>`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := StripKubeVirtSysinfo(tc.in); got != tc.want {
				t.Errorf("StripKubeVirtSysinfo(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
