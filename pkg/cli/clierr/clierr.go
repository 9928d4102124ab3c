// Package clierr turns flag-parsing errors into plain words: pflag reports a bad number as
// `invalid argument "-3" for "--version" flag: strconv.ParseUint: parsing "-3": invalid
// syntax`; the tools say `--version "-3": want a whole number from 0 to 18446744073709551615`.
package clierr

import (
	"errors"
	"fmt"
	"math"
	"regexp"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// FlagError is a cobra FlagErrorFunc: set it on a root command (children inherit it).
func FlagError(_ *cobra.Command, err error) error {
	var ive *pflag.InvalidValueError
	if !errors.As(err, &ive) {
		return err
	}
	f, v := ive.GetFlag(), ive.GetValue()
	want := ""
	switch f.Value.Type() {
	case "uint8":
		want = fmt.Sprintf("a whole number from 0 to %d", math.MaxUint8)
	case "uint16":
		want = fmt.Sprintf("a whole number from 0 to %d", math.MaxUint16)
	case "uint32", "uint":
		want = fmt.Sprintf("a whole number from 0 to %d", uint64(math.MaxUint32))
	case "uint64":
		want = fmt.Sprintf("a whole number from 0 to %d", uint64(math.MaxUint64))
	case "int", "int64", "int32":
		want = "a whole number"
	case "bool":
		want = "true or false (or give the switch alone)"
	case "duration":
		want = "a duration such as 30s or 2m"
	case "float64", "float32":
		want = "a number"
	default:
		want = "a " + f.Value.Type()
	}
	return fmt.Errorf("--%s %q: want %s", f.Name, v, want)
}

var placeholderRE = regexp.MustCompile(`^[A-Z][A-Z0-9_.=]*$`)

// BadPlaceholders walks root and its subcommands and describes every value flag whose help
// shows pflag's type name ("string") or a word picked from backquoted usage text instead of
// a placeholder such as `FILE`, and every switch that shows one. The tools' tests require it
// to be empty, so `--help` reads `--measurement FILE`.
func BadPlaceholders(root *cobra.Command) []string {
	var bad []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if f.Name == "help" {
				return
			}
			name, _ := pflag.UnquoteUsage(f)
			if f.Value.Type() == "bool" {
				if name != "" {
					bad = append(bad, fmt.Sprintf("%s --%s: a switch with placeholder %q", c.CommandPath(), f.Name, name))
				}
				return
			}
			if !placeholderRE.MatchString(name) {
				bad = append(bad, fmt.Sprintf("%s --%s: placeholder %q (put the placeholder in backquotes in the usage, e.g. `FILE`)", c.CommandPath(), f.Name, name))
			}
		})
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	return bad
}
