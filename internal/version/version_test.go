package version

import (
	"regexp"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/firmware"
)

func TestString(t *testing.T) {
	in := Get()
	s := in.String("builder")
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 lines, got %q", s)
	}
	if !regexp.MustCompile(`^builder \S+ github\.com/sevshim/sevshim$`).MatchString(lines[0]) {
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
