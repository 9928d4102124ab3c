// Package cli wires the verifier's cobra commands. Each command parses flags, calls package
// owner and prints its report; nothing else happens here.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/sevshim/sevshim/pkg/cli/command"
	"github.com/sevshim/sevshim/pkg/owner"
)

// Main runs the verifier with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return command.Main(ctx, "verifier", NewRoot(), args, stdout, stderr)
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	return command.NewRoot("verifier",
		"The guest owner's side of sevshim: check a platform, make a session, check the measurement, build the secret",
		"verifier runs on the guest owner's trusted machine and only handles files:\n"+
			"  platform  check a platform's SEV certificate chain against AMD's roots (or the emulator's test root)\n"+
			"  session   make the launch session for a verified platform (GODH, session, TEK/TIK)\n"+
			"  measure   check a launch measurement against the shim image\n"+
			"  secret    build the LAUNCH_SECRET packet, only for a measurement that checks out\n"+
			"  receipt   check the shim's receipt: what the owner's own shim decided, MACed with the owner's key\n"+
			"  attest    check TPM evidence: the provider's TPM holds the shim's event (not a proof against the provider)\n"+
			"The files and the order of the steps are described in docs/flow.md and docs/verifier.md.",
		platformCmd(), sessionCmd(), measureCmd(), secretCmd(), receiptCmd(), attestCmd())
}

func trustFlags(c *cobra.Command, t *owner.Trust) {
	c.Flags().StringVar(&t.RootPath, "root", "", "trust ONLY the emulator's TEST root: the platform's state `DIR` (hostctl --state), a directory holding ask_ark.cert, or that file; never use with real hardware")
	c.Flags().StringVar(&t.Product, "product", "", "require the embedded AMD root of this product `NAME` (naples, rome, milan, genoa, turin)")
}

func warnTest(cmd *cobra.Command, t owner.Trust) {
	if t.RootPath != "" {
		fmt.Fprintln(cmd.ErrOrStderr(), "verifier: "+owner.TestRootWarning)
	}
}

func platformCmd() *cobra.Command {
	var chain string
	var t owner.Trust
	var asJSON bool
	c := &cobra.Command{
		Use:   "platform --chain CHAIN [--root DIR | --product NAME] [--json]",
		Short: "Verify a platform's SEV certificate chain and print its product, API version and PDH",
		Long: "platform reads a chain file as `hostctl platform export` writes it (PDH || PEK || OCA || CEK,\n" +
			"then optionally ASK || ARK; 0x824 bytes per platform certificate) and verifies\n" +
			"ARK -> ASK -> CEK -> PEK -> PDH and OCA -> PEK. By default the ARK/ASK must be one of AMD's,\n" +
			"embedded in this program (naples, rome, milan, genoa, turin); --product narrows that to one.\n" +
			"--root trusts instead the emulator's TEST root (and only it), with a warning. On success it\n" +
			"prints the product, the API version in the PEK and PDH certificates and the SHA-256 of the\n" +
			"PDH key to use; on failure it names the malformed certificate or the broken link (\"OCA -> PEK\"\n" +
			"means the PEK's signature by the OCA) and exits 1.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			warnTest(cmd, t)
			r, err := owner.VerifyPlatform(chain, t)
			if jerr := command.PrintReport(cmd, asJSON, r, owner.WritePlatformText); jerr != nil {
				return jerr
			}
			return err
		},
	}
	c.Flags().StringVar(&chain, "chain", "", "chain `FILE` written by hostctl platform export (required)")
	trustFlags(c, &t)
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (also on failure)")
	c.MarkFlagRequired("chain")
	return c
}

func sessionCmd() *cobra.Command {
	var chain, pol, name, out string
	var t owner.Trust
	var force, asJSON bool
	var lx *libvirtXML
	c := &cobra.Command{
		Use:   "session --chain CHAIN --policy HEX --out DIR [--name NAME] [--root DIR | --product NAME]",
		Short: "Verify a platform chain, then write a launch session for its PDH: GODH, session, TEK/TIK (0600)",
		Long: "session first verifies the chain exactly as `verifier platform` does (and refuses if it does not\n" +
			"verify), then makes a fresh ephemeral P-384 key (GODH), derives the shared secret with the PDH,\n" +
			"picks a random TEK and TIK and wraps them for LAUNCH_START under the policy. It writes, in DIR:\n" +
			"  NAME_godh.b64, NAME_session.b64  base64, what QEMU's sev-guest dh-cert-file/session-file read\n" +
			"  NAME_tek.bin, NAME_tik.bin       raw 16-byte keys, mode 0600: they never leave this machine\n" +
			"  session.json                     {\"policy\", \"name\", \"chain_sha256\"}\n" +
			"It refuses to overwrite an existing session unless --force. The policy is the 32-bit SEV guest\n" +
			"policy in hex: bit 0 NODBG, 1 NOKS, 2 ES, 3 NOSEND, 4 DOMAIN, 5 SEV, bits 16-23/24-31 the\n" +
			"minimum API major/minor (0x1 = no debugging; sending stays allowed, which export needs).\n" +
			"ES is refused (the shim does not support SEV-ES yet); NOSEND is made with a warning (the\n" +
			"guest can never be exported).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := owner.ParsePolicy(pol)
			if err != nil {
				return err
			}
			if err := lx.check(asJSON); err != nil {
				return err
			}
			warnTest(cmd, t)
			r, err := owner.CreateSession(nil, chain, t, p, name, out, force)
			if err != nil {
				if r != nil && r.Platform != nil && !r.Platform.Verified && !asJSON {
					owner.WritePlatformText(cmd.OutOrStdout(), r.Platform)
				}
				return err
			}
			if err := command.PrintReport(cmd, asJSON, r, owner.WriteSessionText); err != nil {
				return err
			}
			return lx.print(cmd.OutOrStdout(), out, name, uint32(p))
		},
	}
	lx = addLibvirtXMLFlags(c)
	c.Flags().StringVar(&chain, "chain", "", "chain `FILE` of the platform that will launch the guest (required)")
	c.Flags().StringVar(&pol, "policy", "", "SEV guest policy in `HEX`, e.g. 0x1 (required)")
	c.Flags().StringVar(&name, "name", owner.DefaultSessionName, "file-name prefix `NAME` of the session files")
	c.Flags().StringVar(&out, "out", "", "session `DIR` to write (created 0700 if missing; required)")
	c.Flags().BoolVar(&force, "force", false, "overwrite an existing session in DIR")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	trustFlags(c, &t)
	c.MarkFlagRequired("chain")
	c.MarkFlagRequired("policy")
	c.MarkFlagRequired("out")
	return c
}

type measureInputs struct {
	session, measurement, image string
}

func (m *measureInputs) flags(c *cobra.Command) {
	c.Flags().StringVar(&m.session, "session", "", "session `DIR` written by verifier session (required)")
	c.Flags().StringVar(&m.measurement, "measurement", "", "measurement `FILE` (measurement.json of hostctl launch) (required)")
	c.Flags().StringVar(&m.image, "image", "", "the shim image `FILE` that was launched (required)")
	for _, f := range []string{"session", "measurement", "image"} {
		c.MarkFlagRequired(f)
	}
}

func (m *measureInputs) load() (*owner.Session, *owner.Measurement, []byte, error) {
	s, err := owner.LoadSession(m.session)
	if err != nil {
		return nil, nil, nil, err
	}
	mf, err := owner.LoadMeasurementFile(m.measurement)
	if err != nil {
		return nil, nil, nil, err
	}
	img, err := os.ReadFile(m.image)
	if err != nil {
		return nil, nil, nil, err
	}
	return s, mf, img, nil
}

func measureCmd() *cobra.Command {
	var in measureInputs
	var asJSON bool
	c := &cobra.Command{
		Use:   "measure --session DIR --measurement FILE --image SHIM.fd [--json]",
		Short: "Check a launch measurement against the shim image: prints `measurement OK` or `measurement MISMATCH` (exit 1)",
		Long: "measure recomputes the expected LAUNCH_MEASURE from the image's launch digest (SHA-256 of the\n" +
			"flash, as `builder measure` prints it), the session's TIK, and the API version, build id, policy\n" +
			"and MNONCE from the measurement file:\n" +
			"  HMAC-SHA256(TIK, 0x04 || API_MAJOR || API_MINOR || BUILD || LE32(POLICY) || LD || MNONCE)\n" +
			"and compares it with the measured value. It also requires the measured policy to be the\n" +
			"session's. It prints both values; on a mismatch it says `measurement MISMATCH` and exits 1.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, m, img, err := in.load()
			if err != nil {
				return err
			}
			r, err := owner.CheckMeasurement(s, m, in.image, img)
			if jerr := command.PrintReport(cmd, asJSON, r, owner.WriteMeasureText); jerr != nil {
				return jerr
			}
			return err
		},
	}
	in.flags(c)
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (also on a mismatch)")
	return c
}

func secretCmd() *cobra.Command {
	var in measureInputs
	var secrets []string
	var out string
	var rk owner.ReceiptKeyArg
	var keyPath string
	var asJSON bool
	c := &cobra.Command{
		Use:   "secret --session DIR --measurement FILE --image SHIM.fd [--secret GUID=FILE...] [--receipt-key FILE | --new-receipt-key] --out secret.json [--json]",
		Short: "Build the LAUNCH_SECRET packet for a launch whose measurement checks out",
		Long: "secret first runs the `verifier measure` check and refuses unless it says OK. It then builds\n" +
			"the EFI secret table (header GUID 1e74f542-71dd-4d66-963e-ef4287ff173b; one entry per --secret,\n" +
			"the entry's GUID and the bytes of FILE; sevctl's layout), refuses if the table does not fit the\n" +
			"shim image's secret block, encrypts it with the TEK (AES-128-CTR, random IV) and MACs it with the\n" +
			"TIK over the measured value, and writes secret.json (mode 0600) with libvirt's keys:\n" +
			"  sev-secret-header (base64, 52 bytes), sev-secret (base64 ciphertext),\n" +
			"  sev-secret-set-address (the secret block's guest-physical address, from the image's footer table)\n" +
			"which `hostctl launch-finish --secret` injects. --secret may repeat; " +
			"736869e5-84f0-4973-92ec-06879ce3da0b is the usual GUID of a disk passphrase.\n" +
			"--receipt-key FILE adds the owner's receipt key (48 raw bytes) as the table entry\n" +
			"faea669a-ae1b-4c39-9b87-e5ae69994482; --new-receipt-key makes a fresh one and writes it, mode 0600,\n" +
			"to DIR/receipt.key (or to --receipt-key FILE), refusing to overwrite. The shim takes the key out\n" +
			"of the table before anything reads it and MACs its receipt with it (`verifier receipt`).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var args []owner.SecretArg
			for _, s := range secrets {
				a, err := owner.ParseSecretArg(s)
				if err != nil {
					return err
				}
				args = append(args, a)
			}
			s, m, img, err := in.load()
			if err != nil {
				return err
			}
			rk.Path = keyPath
			r, err := owner.BuildSecretWithReceipt(nil, s, m, in.image, img, args, rk, out)
			if asJSON && r != nil && (err == nil || r.Measure != nil && !r.Measure.OK()) {
				if err != nil {
					r.Out = "" // nothing was written
				}
				if jerr := command.WriteJSON(cmd.OutOrStdout(), r); jerr != nil {
					return jerr
				}
				return err
			}
			if err != nil {
				if r != nil && r.Measure != nil && !r.Measure.OK() {
					owner.WriteMeasureText(cmd.OutOrStdout(), r.Measure)
				}
				return err
			}
			owner.WriteSecretText(cmd.OutOrStdout(), r)
			return nil
		},
	}
	in.flags(c)
	c.Flags().StringArrayVar(&secrets, "secret", nil, "one secret table entry, `GUID=FILE` (repeatable; at least one, or a receipt key)")
	c.Flags().StringVar(&keyPath, "receipt-key", "", "add the owner's receipt key from `FILE` (48 raw bytes); with --new-receipt-key: where to write the new key")
	c.Flags().BoolVar(&rk.Generate, "new-receipt-key", false, "generate a receipt key and write it 0600 to the session's receipt.key (never overwrites)")
	c.Flags().StringVar(&out, "out", "", "`FILE` to write the secret to, e.g. secret.json (required)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (also on a measurement mismatch)")
	c.MarkFlagRequired("out")
	return c
}
