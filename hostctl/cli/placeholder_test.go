package cli

import (
	"testing"

	"github.com/sevshim/sevshim/pkg/cli/clierr"
)

// TestFlagPlaceholders: every value flag shows a placeholder (`--work DIR`), never pflag's
// type name ("string") or a word picked from backquoted text in the usage.
func TestFlagPlaceholders(t *testing.T) {
	for _, b := range clierr.BadPlaceholders(NewRoot()) {
		t.Error(b)
	}
}
