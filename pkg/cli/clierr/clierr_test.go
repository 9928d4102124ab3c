package clierr

import (
	"testing"

	"github.com/spf13/cobra"
)

func TestFlagError(t *testing.T) {
	var u8 uint8
	var u64 uint64
	var i int
	var b bool
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--n8", "300"}, `--n8 "300": want a whole number from 0 to 255`},
		{[]string{"--n64", "-3"}, `--n64 "-3": want a whole number from 0 to 18446744073709551615`},
		{[]string{"--n", "x"}, `--n "x": want a whole number`},
		{[]string{"--b=maybe"}, `--b "maybe": want true or false (or give the switch alone)`},
		{[]string{"--nosuch"}, `unknown flag: --nosuch`},
	} {
		c := &cobra.Command{Use: "x", RunE: func(*cobra.Command, []string) error { return nil }, SilenceErrors: true, SilenceUsage: true}
		c.Flags().Uint8Var(&u8, "n8", 0, "")
		c.Flags().Uint64Var(&u64, "n64", 0, "")
		c.Flags().IntVar(&i, "n", 0, "")
		c.Flags().BoolVar(&b, "b", false, "")
		c.SetFlagErrorFunc(FlagError)
		c.SetArgs(tc.args)
		if err := c.Execute(); err == nil || err.Error() != tc.want {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
