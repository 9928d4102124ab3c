// Package cli wires the builder's cobra commands. Each command only parses flags and calls
// the libraries under pkg/ (formats, keys, OVMF reader, SEV) and builder/inspect.
package cli

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sevshim/sevshim/builder/inspect"
	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/cli/command"
	"github.com/sevshim/sevshim/pkg/firmware"
	"github.com/sevshim/sevshim/pkg/format/layout"
	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/policy"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/keys"
	"github.com/sevshim/sevshim/pkg/ovmf"
	"github.com/sevshim/sevshim/pkg/sev"
)

// TemplateEnv names a shim template file that `builder build` uses instead of the embedded one
// when --template is not given (the same variable the tests and tools read, tests/repo).
const TemplateEnv = "SEVSHIM_SHIM_FD"

// loadTemplate returns the shim template for the policy's layout l and how to name it:
// --template if given, else $SEVSHIM_SHIM_FD if set, else the template of layout l embedded in
// this program (package firmware). A file of another layout is refused when the policy is
// embedded (shimimage).
func loadTemplate(flag string, l layout.Layout) ([]byte, string, error) {
	path, how := flag, "--template"
	if path == "" {
		path, how = os.Getenv(TemplateEnv), "$"+TemplateEnv
	}
	if path == "" {
		b, err := firmware.TemplateFor(l)
		return b, firmware.NameFor(l), err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, path, fmt.Errorf("shim template (%s): %w (unset it to use %s, or build one with `make shim`)", how, err, firmware.NameFor(l))
	}
	return b, path, nil
}

// Main runs the builder with args and returns the process exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return command.Main(ctx, "builder", NewRoot(), args, stdout, stderr)
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	return command.NewRoot("builder",
		"Build sevshim images, sign BIOS bundles, inspect and measure them",
		"builder makes the files of sevshim: the owner's shim image (build), the provider's signed BIOS bundle (sign-bios), keys (keygen), and explains (inspect) and measures (measure) them.",
		keygenCmd(), buildCmd(), signCmd(), inspectCmd(), measureCmd(), diffCmd())
}

func keygenCmd() *cobra.Command {
	var out string
	var force, asJSON bool
	c := &cobra.Command{
		Use:   "keygen --out PREFIX [--json]",
		Short: "Create an ECDSA P-384 signing key: PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (PEM SubjectPublicKeyInfo)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keyPath, pubPath := out+".key", out+".pub"
			if !force {
				for _, p := range []string{keyPath, pubPath} {
					if _, err := os.Stat(p); err == nil {
						return fmt.Errorf("%s exists; refusing to overwrite a key (use --force)", p)
					}
				}
			}
			k, err := keys.GenerateKey()
			if err != nil {
				return err
			}
			priv, pub, err := keys.MarshalPEMPair(k)
			if err != nil {
				return err
			}
			if err := atomicfile.WriteFile(keyPath, priv, 0o600); err != nil {
				return err
			}
			if err := atomicfile.WriteFile(pubPath, pub, 0o644); err != nil {
				return err
			}
			id := keys.KeyID(&k.PublicKey)
			if asJSON {
				return command.WriteJSON(cmd.OutOrStdout(), KeygenResult{Key: keyPath, Public: pubPath, KeyID: hex.EncodeToString(id[:])})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "private key: %s\npublic key:  %s\nkey id:      %x\n", keyPath, pubPath, id)
			return nil
		},
	}
	c.Flags().StringVar(&out, "out", "", "path `PREFIX` of the key files (required)")
	c.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.MarkFlagRequired("out")
	return c
}

func buildCmd() *cobra.Command {
	var polPath, out, tmpl string
	var replace, asJSON bool
	c := &cobra.Command{
		Use:   "build --policy POLICY.yaml --out SHIM.fd [--template FILE] [--json]",
		Short: "Embed a policy (YAML) into the shim template and print the image digests and SEV launch digest",
		Long: "build reads a human-readable policy (layout, signers as public-key files each with a minimum\n" +
			"version, denied digests and versions, secret hand-off mode, TPM mode and PCR), encodes it and\n" +
			"writes it into the policy region of the shim template: --template FILE, else $" + TemplateEnv + "\n" +
			"if set, else the template of the policy's layout embedded in this program (the SHA-256 of the\n" +
			"ovmf-4m one is in builder --version), so\n" +
			"build works outside a checkout. Nothing else in the template changes, so the same inputs\n" +
			"always give the same image.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, info, err := policy.LoadYAMLInfo(polPath)
			if err != nil {
				return err
			}
			for _, w := range info.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), "builder: warning:", w)
			}
			enc, err := p.Encode()
			if err != nil {
				return fmt.Errorf("%s: %w", polPath, err)
			}
			l, _ := layout.ByID(p.Layout) // LoadYAMLInfo validated the layout
			t, tmplName, err := loadTemplate(tmpl, l)
			if err != nil {
				return err
			}
			var img []byte
			if replace {
				img, err = shimimage.ReplacePolicy(t, enc)
			} else {
				img, err = shimimage.EmbedPolicy(t, enc)
			}
			if err != nil {
				return fmt.Errorf("%s: %w", tmplName, err)
			}
			if err := atomicfile.WriteFile(out, img, 0o644); err != nil {
				return err
			}
			d := inspect.DigestsOf(img, true)
			pd, _ := p.Digest()
			w := cmd.OutOrStdout()
			if asJSON {
				return command.WriteJSON(w, BuildResult{Out: out, Bytes: len(img), Template: tmplName, Layout: layout.Describe(p.Layout),
					Signers: len(p.Signers), PolicySHA384: hex.EncodeToString(pd[:]), SHA256: d.SHA256, SHA384: d.SHA384, LaunchDigest: d.LaunchDigest})
			}
			fmt.Fprintf(w, "wrote %s (%d bytes, layout %s, %d signer(s))\n", out, len(img), layout.Describe(p.Layout), len(p.Signers))
			fmt.Fprintf(w, "policy digest (sha384): %x\n", pd)
			fmt.Fprintf(w, "sha256: %s\nsha384: %s\nSEV launch digest: %s\n", d.SHA256, d.SHA384, d.LaunchDigest)
			writeSigners(w, p, info)
			return nil
		},
	}
	c.Flags().StringVar(&polPath, "policy", "", "policy YAML `FILE` (required)")
	c.Flags().StringVar(&out, "out", "", "output shim image `FILE` (required)")
	c.Flags().StringVar(&tmpl, "template", "", "shim template `FILE` with an empty policy region (default: $"+TemplateEnv+", else the embedded one)")
	c.Flags().BoolVar(&replace, "replace", false, "allow a template that already holds a policy (replace it)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.MarkFlagRequired("policy")
	c.MarkFlagRequired("out")
	return c
}

func readKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := keys.ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func signCmd() *cobra.Command {
	var keyPath, out, vs, layoutName string
	var version uint64
	var randomized, asJSON bool
	c := &cobra.Command{
		Use:   "sign-bios --key KEY --version N [--version-string S] --out BUNDLE [--json] BIOS.fd",
		Short: "Check that BIOS.fd is a UEFI image of the layout and write the signed BIOS bundle",
		Long: "sign-bios checks with fiano that BIOS.fd is a UEFI firmware image of the layout (firmware\n" +
			"volumes parse, OVMF footer table present, size matches), writes the 352-byte manifest (version,\n" +
			"SHA-384 digest, signer key id, ECDSA P-384 signature) followed by the image to BUNDLE.\n" +
			"Signatures are deterministic (RFC 6979) unless --randomized, so the same inputs give the same bundle.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("version") {
				return errors.New("--version is required (the BIOS version number the owner's floors compare against)")
			}
			l, ok := layout.ByName(layoutName)
			if !ok && layoutName != "" {
				return fmt.Errorf("--layout %q: unknown layout (known: %s)", layoutName, strings.Join(layout.Names(), ", "))
			}
			key, err := readKey(keyPath)
			if err != nil {
				return err
			}
			img, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if layoutName == "" { // by the image size; no match: the default layout's size error
				if l, ok = layout.BySize(len(img)); !ok {
					l, _ = layout.ByID(layout.Default)
				}
			}
			rep, err := ovmf.CheckBIOS(img, l)
			if err != nil {
				return fmt.Errorf("%s: %w; refusing to sign", args[0], err)
			}
			m, err := manifest.NewManifest(l.ID, img, version, vs, &key.PublicKey)
			if err != nil {
				return err
			}
			var mb []byte
			if randomized {
				mb, err = m.Sign(key)
			} else {
				mb, err = m.SignDeterministic(key)
			}
			if err != nil {
				return err
			}
			if err := manifest.WriteBundle(out, mb, img); err != nil {
				return err
			}
			if asJSON {
				return command.WriteJSON(cmd.OutOrStdout(), SignResult{Out: out, Layout: l.Name, Version: version, VersionString: vs,
					Volumes: len(rep.Volumes), ImageSHA384: hex.EncodeToString(m.ImageDigest[:]), SignerKeyID: hex.EncodeToString(m.SignerKeyID[:])})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: %s version %d %q, %d firmware volumes\nimage sha384: %x\nsigner key id: %x\n",
				out, l.Name, version, vs, len(rep.Volumes), m.ImageDigest, m.SignerKeyID)
			return nil
		},
	}
	c.Flags().StringVar(&keyPath, "key", "", "signing key `FILE` (PKCS#8 or SEC1 PEM, P-384) (required)")
	c.Flags().Uint64Var(&version, "version", 0, "BIOS version number `N` (required)")
	c.Flags().StringVar(&vs, "version-string", "", "printable version `TEXT`, at most 63 characters")
	c.Flags().StringVar(&out, "out", "", "output bundle `FILE` (required)")
	c.Flags().StringVar(&layoutName, "layout", "", "BIOS layout `NAME`: "+strings.Join(layout.Names(), ", ")+" (default: the layout of BIOS.fd's size)")
	c.Flags().BoolVar(&randomized, "randomized", false, "use a random ECDSA nonce instead of RFC 6979 (output differs every run)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.MarkFlagRequired("key")
	c.MarkFlagRequired("out")
	return c
}

func inspectCmd() *cobra.Command {
	var asJSON bool
	var signer, shim string
	c := &cobra.Command{
		Use:   "inspect [--json] FILE",
		Short: "Explain any file sevshim writes: shim image, BIOS bundle, manifest, policy, OVMF image, var store, chain, guest package, keys, JSON",
		Long: "inspect identifies FILE and prints what it holds: for a shim image the policy (signers with\n" +
			"key ids and floors, deny lists, layout, secret and TPM modes), the footer table, secret block and\n" +
			"digests including the SEV launch digest; for a bundle the manifest and, with --signer or --shim,\n" +
			"whether the signature verifies and what the shim would decide (its checks of the manifest, the\n" +
			"image and the policy's secret hand-off mode: E060 for `secret: require` and a BIOS without an SEV\n" +
			"secret block); for a raw OVMF image the firmware volumes (fiano) and footer table. It also names\n" +
			"the other files of the project (var stores with the SHA-384 allowed_vars takes, platform chains,\n" +
			"root certificates, guest packages, which are streamed and checked as receive checks them, keys,\n" +
			"policy YAML, measurement/session/secret/evidence/state JSON) and says what a broken one looks\n" +
			"like (e.g. a truncated shim image: N of 3653632 bytes). With --json, errors are JSON too:\n" +
			"{\"file\", \"kind\", \"error\"}.\n" +
			"Exit status: 0, 1 when FILE cannot be read or explained, 3 when the shim would refuse the bundle\n" +
			"or the signature does not verify with --signer (as `hostctl receive` exits 3 on a refusal).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := inspectFile(args[0], signer, shim)
			if err != nil {
				if asJSON {
					writeJSONError(cmd.OutOrStdout(), args[0], err)
				}
				return err
			}
			if asJSON {
				e := json.NewEncoder(cmd.OutOrStdout())
				e.SetIndent("", "  ")
				if err := e.Encode(r); err != nil {
					return err
				}
			} else {
				inspect.WriteText(cmd.OutOrStdout(), r)
			}
			if why := r.Refusal(); why != "" {
				return &command.ExitError{Code: ExitRefused, Err: errors.New(why)}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().StringVar(&signer, "signer", "", "public key `FILE` to verify a bundle or manifest signature with")
	c.Flags().StringVar(&shim, "shim", "", "shim image `FILE` whose policy judges a bundle (runs the shim's checks)")
	return c
}

func measureCmd() *cobra.Command {
	var image, polHex, api, tikPath, mnonceHex string
	var build uint8
	var asJSON bool
	c := &cobra.Command{
		Use:   "measure --image SHIM.fd [--policy HEX --api MAJOR.MINOR --build N --tik FILE --mnonce HEX] [--json]",
		Short: "Print the SEV launch digest of a shim image and, given the session values, the expected LAUNCH_MEASURE",
		Long: "measure prints the SEV launch digest (GCTX.LD) that LAUNCH_UPDATE_DATA over the flash produces:\n" +
			"SHA-256 of the whole pflash0 image (SEV; SEV-ES would add the VMSAs, which this command does not\n" +
			"model). With --tik, --mnonce, --api, --build and --policy it also prints\n" +
			"MEASURE = HMAC-SHA256(TIK, 0x04 || API_MAJOR || API_MINOR || BUILD || LE32(POLICY) || LD || MNONCE).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			img, err := os.ReadFile(image)
			if err != nil {
				return err
			}
			if _, err := shimimage.Info(img); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "builder: warning: %s: %v (measuring it anyway)\n", image, err)
			}
			ld := sev.LaunchDigest(img)
			w := cmd.OutOrStdout()
			res := MeasureResult{Image: image, LaunchDigest: hex.EncodeToString(ld[:])}
			if tikPath == "" {
				if mnonceHex != "" || polHex != "" || api != "" {
					return errors.New("--tik is needed to compute LAUNCH_MEASURE (with --mnonce, --api, --build, --policy)")
				}
				if asJSON {
					return command.WriteJSON(w, res)
				}
				fmt.Fprintf(w, "launch digest: %x\n", ld)
				return nil
			}
			tikRaw, err := os.ReadFile(tikPath)
			if err != nil {
				return err
			}
			if len(tikRaw) != 16 {
				if h, herr := hex.DecodeString(strings.TrimSpace(string(tikRaw))); herr == nil && len(h) == 16 {
					tikRaw = h
				} else {
					return fmt.Errorf("--tik %s: want 16 raw bytes or 32 hex digits, got %d bytes", tikPath, len(tikRaw))
				}
			}
			var tik [16]byte
			copy(tik[:], tikRaw)
			mn, err := hex.DecodeString(mnonceHex)
			if err != nil || len(mn) != 16 {
				return fmt.Errorf("--mnonce %q: want 32 hex digits", mnonceHex)
			}
			var mnonce [16]byte
			copy(mnonce[:], mn)
			pol, err := strconv.ParseUint(strings.TrimPrefix(polHex, "0x"), 16, 32)
			if err != nil {
				return fmt.Errorf("--policy %q: want the 32-bit SEV guest policy in hex", polHex)
			}
			maj, min, ok := strings.Cut(api, ".")
			a1, e1 := strconv.ParseUint(maj, 10, 8)
			a2, e2 := strconv.ParseUint(min, 10, 8)
			if !ok || e1 != nil || e2 != nil {
				return fmt.Errorf("--api %q: want MAJOR.MINOR", api)
			}
			v := sev.PlatformVersion{APIMajor: uint8(a1), APIMinor: uint8(a2), Build: build}
			m := sev.ComputeMeasure(tik, v, uint32(pol), ld, mnonce)
			if asJSON {
				res.LaunchMeasure = hex.EncodeToString(m[:])
				res.Measurement = res.LaunchMeasure + hex.EncodeToString(mnonce[:])
				return command.WriteJSON(w, res)
			}
			fmt.Fprintf(w, "launch digest: %x\n", ld)
			fmt.Fprintf(w, "launch measure: %x\nmeasurement (MEASURE||MNONCE): %x%x\n", m, m, mnonce)
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	c.Flags().StringVar(&image, "image", "", "shim image `FILE` (required)")
	c.Flags().StringVar(&polHex, "policy", "", "SEV guest policy in `HEX` (e.g. 0x1)")
	c.Flags().StringVar(&api, "api", "", "platform API version `MAJOR.MINOR` (PLATFORM_STATUS)")
	c.Flags().Uint8Var(&build, "build", 0, "platform firmware build id `N`")
	c.Flags().StringVar(&tikPath, "tik", "", "`FILE` with the 16-byte TIK (raw or hex)")
	c.Flags().StringVar(&mnonceHex, "mnonce", "", "MNONCE from LAUNCH_MEASURE, 32 `HEX` digits")
	c.MarkFlagRequired("image")
	return c
}
