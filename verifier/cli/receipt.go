package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sevshim/sevshim/pkg/cli/command"
	"github.com/sevshim/sevshim/pkg/owner"
)

func receiptCmd() *cobra.Command {
	var keyPath, nonceHex, line, from, bundle, image string
	var asJSON bool
	c := &cobra.Command{
		Use:   "receipt --key FILE --nonce HEX|none (--receipt HEX | --from receive.json) [--bundle B] [--image SHIM.fd] [--json]",
		Short: "Check the shim's receipt: what the owner's shim decided, for which bundle and var store (exit 0 only for an acceptance)",
		Long: "receipt checks the line `SEVSHIM RECEIPT <hex>` that the shim printed after its decision (docs/formats.md\n" +
			"section 9). The hex is the whole receipt followed by HMAC-SHA-384 under the owner's receipt key, which\n" +
			"only the owner's measured shim holds (it arrived in the launch secret, `verifier secret --receipt-key`).\n" +
			"The MAC is checked first; nothing in the receipt is believed before it verifies. Then the nonce must be\n" +
			"the one you gave the provider (`hostctl receive --nonce`), so an old receipt cannot be replayed; --bundle\n" +
			"requires that the shim was offered exactly that bundle's manifest, --image that it ran the policy of your\n" +
			"shim image. It prints the verdict, the bundle (version, signer, manifest digest), the image, var-store\n" +
			"and policy digests.\n" +
			"Exit status: 0 an authentic acceptance (\"receipt OK\"); 2 an authentic refusal (\"authentic refusal\n" +
			"E034 version-below-floor\": the shim refused what it was offered and halted); 1 no valid receipt (another\n" +
			"key, a modified field, another nonce, another bundle or policy, `SEVSHIM RECEIPT none`, bad input).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (line == "") == (from == "") {
				return errors.New("give exactly one of --receipt HEX and --from receive.json")
			}
			nonce, err := owner.ParseNonce(nonceHex)
			if err != nil {
				return err
			}
			key, err := owner.LoadReceiptKey(keyPath)
			if err != nil {
				return err
			}
			defer clear(key)
			if from != "" {
				if line, err = owner.ReceiptFromState(from); err != nil {
					return err
				}
			}
			r, err := owner.CheckReceipt(owner.ReceiptCheck{Key: key, Nonce: nonce, Receipt: line, BundlePath: bundle, ImagePath: image})
			if jerr := command.PrintReport(cmd, asJSON, r, owner.WriteReceiptText); jerr != nil {
				return jerr
			}
			if code := r.ExitCode(); code != 0 {
				if r.Status != "REFUSAL" {
					err = fmt.Errorf("receipt FAILED: %w", err)
				}
				return &command.ExitError{Code: code, Err: err}
			}
			return nil
		},
	}
	c.Flags().StringVar(&keyPath, "key", "", "the owner's receipt key `FILE` (48 raw bytes; required)")
	c.Flags().StringVar(&nonceHex, "nonce", "", "the nonce you gave hostctl receive --nonce: 64 `HEX` digits, or none (required)")
	c.Flags().StringVar(&line, "receipt", "", "the receipt: the whole SEVSHIM RECEIPT line or its `HEX`")
	c.Flags().StringVar(&from, "from", "", "read the receipt from hostctl receive's state `FILE` (WB/receive.json)")
	c.Flags().StringVar(&bundle, "bundle", "", "require that the shim was offered this BIOS bundle `FILE`")
	c.Flags().StringVar(&image, "image", "", "require that the shim ran the policy of this shim image `FILE`")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (also on failure)")
	c.MarkFlagRequired("key")
	c.MarkFlagRequired("nonce")
	return c
}
