package cli

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func flagNames(c *cobra.Command) []string {
	var n []string
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" {
			n = append(n, f.Name)
		}
	})
	return n
}

func requiredFlags(c *cobra.Command) []string {
	var n []string
	c.LocalFlags().VisitAll(func(f *pflag.Flag) {
		if v, ok := f.Annotations[cobra.BashCompOneRequiredFlag]; ok && len(v) > 0 && v[0] == "true" {
			n = append(n, f.Name)
		}
	})
	return n
}
