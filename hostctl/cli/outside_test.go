package cli

import (
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/cli/version"
)

func TestVersion(t *testing.T) {
	so, se, code := runMain("--version")
	if code != 0 || so != version.Get().String("hostctl") {
		t.Fatalf("--version: %d %q %q", code, so, se)
	}
}

// Every hostctl command that reports a result takes --json (tests/docs checks the output of
// each on a real launch, export and receive; attest's in tests/guest).
func TestResultCommandsTakeJSON(t *testing.T) {
	root := NewRoot()
	for _, path := range [][]string{
		{"platform", "init"}, {"platform", "status"}, {"platform", "export"},
		{"launch"}, {"launch-finish"}, {"export"}, {"receive"}, {"stop"}, {"tpm-quote"}, {"attest"},
	} {
		c, _, err := root.Find(path)
		if err != nil {
			t.Fatal(err)
		}
		if c.Flags().Lookup("json") == nil {
			t.Errorf("hostctl %v has no --json", path)
		}
		so, _, code := runMain(append(path, "--help")...)
		if code != 0 || !strings.Contains(so, "--json") {
			t.Errorf("hostctl %v --help does not mention --json", path)
		}
	}
}
