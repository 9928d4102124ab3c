package cli

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/sevshim/sevshim/pkg/attest"
	"github.com/sevshim/sevshim/pkg/cli/command"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
)

// attestReport is what `verifier attest` prints (text or --json).
type attestReport struct {
	OK          bool              `json:"ok"`
	PCR         uint              `json:"pcr"`
	Banks       map[string]string `json:"banks"`
	BIOSVersion uint64            `json:"bios_version"`
	Signer      string            `json:"signer_key_id"`
	BIOSDigest  string            `json:"bios_digest"`
	Policy      string            `json:"policy_digest"`
	Vars        string            `json:"vars_digest"` // "" = no var store
	Event       string            `json:"event"`
	Error       string            `json:"error,omitempty"`
}

func attestCmd() *cobra.Command {
	var evidencePath, imagePath, bundlePath, nonceHex, varsArg string
	var asJSON bool
	c := &cobra.Command{
		Use:   "attest --evidence FILE --image SHIM.fd --bundle BUNDLE --nonce HEX [--vars VARS.fd|none] [--json]",
		Short: "Check TPM evidence: the provider's TPM holds the event of the shim accepting this bundle (not a proof against the provider; see receipt)",
		Long: "attest checks TPM evidence (`hostctl attest` writes it from the agent in the running guest;\n" +
			"`hostctl tpm-quote` from a guest without an OS) against the event the shim image\n" +
			"records when it accepts the bundle (docs/formats.md section 7): the event is built from the\n" +
			"bundle's manifest (layout, version, signer key id, BIOS digest), the SHA-384 of the shim's\n" +
			"embedded policy and of the var store (--vars), and replayed into every PCR bank in the evidence from zero. It then checks\n" +
			"the quote: signed by the evidence's attestation key, of type QUOTE, carrying --nonce (the\n" +
			"value you gave the host, so an old quote cannot be replayed), over exactly the policy's PCR\n" +
			"in the SHA-256 bank, with the replayed value. The attestation key is taken from the evidence\n" +
			"as is: on real hardware it must first be certified by the TPM's endorsement key (docs/tpm.md).\n" +
			"What it proves: that this TPM holds these values. The TPM here is the provider's (swtpm), so a\n" +
			"provider can make it hold them without running the shim at all: this is not evidence against the\n" +
			"provider. The owner's evidence is the shim's receipt, MACed with a key only the measured shim has\n" +
			"(`verifier receipt`).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nonce, err := hex.DecodeString(nonceHex)
			if err != nil || len(nonce) == 0 {
				return fmt.Errorf("--nonce must be the non-empty hex value given to the host")
			}
			img, err := os.ReadFile(imagePath)
			if err != nil {
				return fmt.Errorf("reading the shim image: %w", err)
			}
			man, _, _, err := manifest.ReadBundle(bundlePath)
			if err != nil {
				return fmt.Errorf("reading the BIOS bundle %s: %w", bundlePath, err)
			}
			raw, err := os.ReadFile(evidencePath)
			if err != nil {
				return fmt.Errorf("reading the evidence: %w", err)
			}
			var ev attest.Evidence
			if err := json.Unmarshal(raw, &ev); err != nil {
				return fmt.Errorf("%s: %w", evidencePath, err)
			}
			vars, err := expectedVars(img, varsArg)
			if err != nil {
				return err
			}
			x, err := attest.EventFor(img, man, vars)
			if err != nil {
				return err
			}
			if x.Mode == 0 {
				return fmt.Errorf("%s: the shim's policy has tpm: off, so it records nothing to attest", imagePath)
			}
			r := attestReport{
				PCR: ev.PCR, BIOSVersion: x.Fields.BIOSVersion,
				Signer: hex.EncodeToString(x.Fields.SignerKeyID[:]), BIOSDigest: hex.EncodeToString(x.Fields.BIOSDigest[:]),
				Policy: hex.EncodeToString(x.Fields.PolicyDigest[:]), Event: hex.EncodeToString(x.Event),
			}
			if vars != nil {
				r.Vars = hex.EncodeToString(vars[:])
			}
			// the bank values as the evidence file spells them (hex by bank name)
			vb, _ := json.Marshal(&ev)
			var vf struct {
				Banks map[string]string `json:"banks"`
			}
			json.Unmarshal(vb, &vf)
			r.Banks = vf.Banks
			switch {
			case ev.PCR != x.PCR:
				err = fmt.Errorf("the evidence is for PCR %d, the shim's policy records in PCR %d", ev.PCR, x.PCR)
			case string(ev.Nonce) != string(nonce):
				err = fmt.Errorf("the evidence carries nonce %x, not the one given (%x): a stale or replayed quote", ev.Nonce, nonce)
			default:
				err = attest.Verify(&ev, x.Event)
			}
			r.OK = err == nil
			if err != nil {
				r.Error = err.Error()
			}
			if jerr := command.PrintReport(cmd, asJSON, r, writeAttestText); jerr != nil {
				return jerr
			}
			if err != nil {
				return fmt.Errorf("attestation FAILED: %w", err)
			}
			return nil
		},
	}
	c.Flags().StringVar(&evidencePath, "evidence", "", "TPM evidence `FILE` written by hostctl attest or tpm-quote (required)")
	c.Flags().StringVar(&imagePath, "image", "", "the owner's shim image `FILE` (required)")
	c.Flags().StringVar(&bundlePath, "bundle", "", "the BIOS bundle `FILE` the shim should have accepted (required)")
	c.Flags().StringVar(&nonceHex, "nonce", "", "the `HEX` nonce given to hostctl attest or tpm-quote (required)")
	c.Flags().StringVar(&varsArg, "vars", "", "the var store `FILE` the host was to program (its SHA-384 is in the event), or none; default: the one store a vars: allow policy lists, none for vars: none")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (also on failure)")
	for _, f := range []string{"evidence", "image", "bundle", "nonce"} {
		c.MarkFlagRequired(f)
	}
	return c
}

// expectedVars is the var-store digest the event must carry: --vars FILE (its SHA-384),
// --vars none (no var store), or, without --vars, what the shim's policy leaves no doubt about
// (vars: none -> no store; vars: allow with exactly one digest -> that one).
func expectedVars(shimImage []byte, arg string) (*[48]byte, error) {
	switch arg {
	case "none":
		return nil, nil
	case "":
		_, pol, err := shimimage.ExtractPolicy(shimImage)
		if err != nil {
			return nil, fmt.Errorf("shim image: %w", err)
		}
		switch {
		case pol.VarsMode == policy.VarsNone:
			return nil, nil
		case pol.VarsMode == policy.VarsAllow && len(pol.AllowedVars) == 1:
			d := pol.AllowedVars[0]
			return &d, nil
		}
		return nil, fmt.Errorf("the shim's policy (vars: %s) allows more than one var store: say which with --vars VARS.fd or --vars none", policy.VarsModeName(pol.VarsMode))
	}
	b, err := os.ReadFile(arg)
	if err != nil {
		return nil, fmt.Errorf("--vars: %w", err)
	}
	d := sha512.Sum384(b)
	return &d, nil
}

func writeAttestText(w io.Writer, r attestReport) {
	vs := "none"
	if r.Vars != "" {
		vs = r.Vars[:16] + "..."
	}
	fmt.Fprintf(w, "PCR %d expected event: bios version %d, signer %s, bios digest %s..., policy digest %s..., var store %s\n",
		r.PCR, r.BIOSVersion, r.Signer[:16], r.BIOSDigest[:16], r.Policy[:16], vs)
	for _, n := range []string{"sha1", "sha256", "sha384", "sha512"} {
		if v, ok := r.Banks[n]; ok {
			fmt.Fprintf(w, "  %-6s %s\n", n, v)
		}
	}
	if r.OK {
		fmt.Fprintln(w, "attestation OK: every bank and the quote match the shim accepting this bundle")
		fmt.Fprintln(w, "what this proves: the TPM (the provider's swtpm) holds these values; the provider could have put them")
		fmt.Fprintln(w, "there without any shim running, so it is no proof against the provider: check the receipt (verifier receipt)")
	} else {
		fmt.Fprintln(w, "attestation FAILED:", r.Error)
	}
}
