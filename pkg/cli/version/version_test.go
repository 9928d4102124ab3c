package version

import (
	"regexp"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/firmware"
)

func TestString(t *testing.T) {
	in := Get()
	s := in.String("builder")
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 lines, got %q", s)
	}
	if !regexp.MustCompile(`^builder version \S+ github\.com/sevshim/sevshim$`).MatchString(lines[0]) {
		t.Errorf("line 1: %q", lines[0])
	}
	if !regexp.MustCompile(`^commit: \S+( \(modified\))?$`).MatchString(lines[1]) {
		t.Errorf("line 2: %q", lines[1])
	}
	if want := "shim template sha256: " + firmware.Digest(); lines[3] != want {
		t.Errorf("line 4: %q, want %q", lines[3], want)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(in.ShimSHA256) {
		t.Errorf("shim digest %q", in.ShimSHA256)
	}
}

func TestPseudoCommit(t *testing.T) {
	for v, want := range map[string]string{
		"v0.0.0-20261201232707-0bfa5acf6382":        "0bfa5acf6382",
		"v1.2.4-0.20261201232707-0bfa5acf6382":      "0bfa5acf6382",
		"v1.2.4-rc.1.0.20261201232707-0bfa5acf6382": "0bfa5acf6382",
		"v1.2.3":       "",
		"(devel)":      "",
		"v1.2.3-beta1": "",
	} {
		if got := pseudoCommit(v); got != want {
			t.Errorf("pseudoCommit(%q) = %q, want %q", v, got, want)
		}
	}
}
