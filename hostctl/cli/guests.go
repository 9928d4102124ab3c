package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sevshim/sevshim/pkg/host"
)

// platformGuestsCmds are `platform guests` and `platform decommission`; the caller adds the
// PSP flags (pf) to both.
func platformGuestsCmds(pf *pspFlags) (guests, decom *cobra.Command) {
	var asJSON bool
	guests = &cobra.Command{
		Use:   "guests",
		Short: "list the platform's guest contexts (handle, state, policy, ASID)",
		Long: "guests lists every guest context of the emulated platform. hostctl releases a context\n" +
			"(DECOMMISSION) whenever its VM ends: a failed or interrupted launch or receive, a refusal,\n" +
			"export (the SENT context), tpm-quote and hostctl stop. A context left by a hostctl that was\n" +
			"killed can be freed with hostctl platform decommission --handle N.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			gs, err := host.PlatformGuests(pf.kind, pf.state)
			if err != nil {
				return err
			}
			if asJSON {
				e := json.NewEncoder(cmd.OutOrStdout())
				e.SetIndent("", "  ")
				return e.Encode(gs)
			}
			host.WriteGuests(cmd.OutOrStdout(), pf.state, gs)
			return nil
		},
	}
	guests.Flags().BoolVar(&asJSON, "json", false, "print JSON (a list of {handle, state, policy, asid})")
	var handle uint32
	decom = &cobra.Command{
		Use:   "decommission --state DIR --handle N",
		Short: "free one guest context (DECOMMISSION); its guest can then never run or be exported again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			if !cmd.Flags().Changed("handle") {
				return errors.New("--handle N is required (see hostctl platform guests)")
			}
			if err := host.DecommissionGuest(pf.kind, pf.state, handle); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "guest context %d released (DECOMMISSION)\n", handle)
			return nil
		},
	}
	decom.Flags().Uint32Var(&handle, "handle", 0, "the guest context's handle `N` (from hostctl platform guests; required)")
	return guests, decom
}
