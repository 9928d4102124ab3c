package cli

import (
	"regexp"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestFlagPlaceholders: every value flag shows a placeholder (`--measurement FILE`), never
// pflag's type name ("string") or a word picked from backquoted text in the usage.
func TestFlagPlaceholders(t *testing.T) {
	ok := regexp.MustCompile(`^[A-Z][A-Z0-9_.=]*$`)
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			name, _ := pflag.UnquoteUsage(f)
			if f.Value.Type() == "bool" {
				if name != "" {
					t.Errorf("%s --%s: a switch with placeholder %q", c.CommandPath(), f.Name, name)
				}
				return
			}
			if !ok.MatchString(name) {
				t.Errorf("%s --%s: placeholder %q (put the placeholder in backquotes in the usage, e.g. `FILE`)", c.CommandPath(), f.Name, name)
			}
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(NewRoot())
}
