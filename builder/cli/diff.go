package cli

import (
	"encoding/json"
	"os"

	"github.com/spf13/cobra"

	"github.com/sevshim/sevshim/builder/diff"
)

func diffCmd() *cobra.Command {
	var asJSON, all bool
	c := &cobra.Command{
		Use:   "diff [--json] [--all] A B",
		Short: "Compare two shim images or two BIOS bundles: what changed, and whether the owner's measurement changes",
		Long: "diff compares two shim images (policy: signers and their floors, deny lists, secret, TPM and\n" +
			"var-store modes; layout; the shim's code; digests) or two BIOS bundles (version, signer, image\n" +
			"digest, layout, signature). For two shims it says first whether the SEV launch digest (the\n" +
			"measurement the owner approves) changes and whether the code or only the policy differs.\n" +
			"Lines: \"~ field: a -> b\" changed, \"- ...\" only in A, \"+ ...\" only in B; --all also prints\n" +
			"\"= ...\" for what is the same. The exit status is 0 whether or not they differ.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			b, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			r, err := diff.Files(args[0], a, args[1], b)
			if err != nil {
				return err
			}
			if asJSON {
				e := json.NewEncoder(cmd.OutOrStdout())
				e.SetIndent("", "  ")
				return e.Encode(r)
			}
			diff.WriteText(cmd.OutOrStdout(), r, all)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (every field, with op =, ~, + or -)")
	c.Flags().BoolVar(&all, "all", false, "also print the fields that are the same")
	return c
}
