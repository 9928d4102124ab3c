// Package cli holds hostctl's cobra commands. They parse flags and call package host.
package cli

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/sevshim/sevshim/pkg/cli/command"
	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/pkg/host"
	"github.com/sevshim/sevshim/pkg/owner"
	_ "github.com/sevshim/sevshim/pkg/vmm/qemu" // the VMM backend hostctl offers (registers "qemu")
)

// testHold adds a hidden flag that makes a flow wait at a known point (tests/flow kills or
// interrupts hostctl there). It is not documented and is empty in normal use.
func testHold(c *cobra.Command, name, usage string, hook *func(context.Context) error) {
	var d time.Duration
	c.Flags().DurationVar(&d, name, 0, usage)
	c.Flags().MarkHidden(name)
	prev := c.PreRunE
	c.PreRunE = func(cmd *cobra.Command, args []string) error {
		if d > 0 {
			*hook = host.Hold(d)
		}
		if prev != nil {
			return prev(cmd, args)
		}
		return nil
	}
}

// Exit codes.
const (
	ExitOK      = 0
	ExitError   = 1 // bad input, I/O, QEMU or PSP failure
	ExitRefused = 3 // a package refused before QEMU, or the shim refused the BIOS
	// ExitInterrupted: SIGINT or SIGTERM ended the command (128 + SIGINT, as shells report).
	ExitInterrupted = 130
)

// Main runs hostctl with args and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := command.Execute(ctx, NewRoot(), args, stdout, stderr); err != nil {
		var ie *host.InterruptedError
		if errors.As(err, &ie) || ctx.Err() != nil {
			if ie == nil {
				ie = &host.InterruptedError{Msg: err.Error()}
			}
			fmt.Fprintln(stderr, "hostctl:", ie)
			return ExitInterrupted
		}
		fmt.Fprintln(stderr, "hostctl:", err)
		var re *host.RefusedError
		if errors.As(err, &re) {
			return ExitRefused
		}
		return ExitError
	}
	return ExitOK
}

// NewRoot builds the command tree.
func NewRoot() *cobra.Command {
	return command.NewRoot("hostctl",
		"The host side of sevshim: PSP platform, private launch, export, receive",
		"hostctl drives the PSP (the software emulator, or /dev/sev) and QEMU:\n"+
			"  platform init|export|status   the platform's identity and certificate chain\n"+
			"  platform guests|decommission  the platform's guest contexts\n"+
			"  launch, launch-finish         the owner's private two-phase launch of a shim (LAUNCH_*)\n"+
			"  export                        the running guest -> a guest package for a provider (SEND_*)\n"+
			"  receive                       a guest package -> a fresh QEMU with the provider's BIOS (RECEIVE_*)\n"+
			"  attest                        ask the agent of a running received guest for TPM evidence (the VM keeps running)\n"+
			"  tpm-quote                     read the TPM of a received guest without an OS (ends its VM) -> evidence\n"+
			"  stop                          end the QEMU (and swtpm) of a work directory, release its guest context\n"+
			"QEMU processes run detached and belong to their --work directory. Only platform init creates a\n"+
			"platform. Exit status: 0 ok, 1 error, 3 refused, 130 interrupted. See docs/flow.md and docs/hostctl.md.",
		platformCmd(), launchCmd(), launchFinishCmd(), exportCmd(), receiveCmd(), attestCmd(), tpmQuoteCmd(), stopCmd())
}

type pspFlags struct{ kind, state string }

func (f *pspFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.state, "state", "", "state `DIR` of the emulated PSP (required with --kind emu)")
	c.Flags().StringVar(&f.kind, "kind", "emu", "PSP backend `KIND`: emu (software emulator) or linux (/dev/sev)")
}

func (f *pspFlags) check() error {
	if f.kind == "emu" && f.state == "" {
		return errors.New("--state DIR is required for the emulated PSP")
	}
	return nil
}

func platformCmd() *cobra.Command {
	c := &cobra.Command{Use: "platform", Short: "PSP platform commands (init, export, status, guests, decommission)"}
	var pf pspFlags
	var asJSON bool
	// info is a subcommand that prints the platform's status after get (init or status).
	info := func(use, short string, get func(kind, state string) (*host.PlatformInfo, error)) *cobra.Command {
		return &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := pf.check(); err != nil {
					return err
				}
				in, err := get(pf.kind, pf.state)
				if err != nil {
					return err
				}
				return printInfo(cmd.OutOrStdout(), in, asJSON)
			}}
	}
	init := info("init", "create the emulated platform (persistent identity in --state; the only command that creates one) or open the hardware one", host.PlatformInit)
	status := info("status", "show an existing platform: API version, state, PDH key, guest contexts", host.PlatformStatus)
	var out, rootOut string
	var exportJSON bool
	export := &cobra.Command{
		Use:   "export",
		Short: "write the platform's chain file (PDH, PEK, OCA, CEK, ASK, ARK) for verifiers and hostctl export",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			if out == "" {
				return errors.New("--out CHAIN is required")
			}
			ch, err := host.PlatformExport(pf.kind, pf.state, out, rootOut)
			if err != nil {
				return err
			}
			k := ch.PDH.KeyDigest()
			if exportJSON {
				return writeJSON(cmd.OutOrStdout(), PlatformExportJSON{Out: out, PDHSHA256: hex.EncodeToString(k[:]), CEKSigned: ch.ASK != nil, RootOut: rootOut})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (PDH key sha256 %x", out, k[:])
			if ch.ASK == nil {
				fmt.Fprintf(cmd.OutOrStdout(), "; CEK unsigned: fetch the ASK-signed one from AMD's key server")
			}
			fmt.Fprintln(cmd.OutOrStdout(), ")")
			if rootOut != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "wrote the emulator's TEST root (ASK || ARK) to %s; give it to verifiers explicitly with --root\n", rootOut)
			}
			return nil
		},
	}
	export.Flags().StringVar(&out, "out", "", "chain `FILE` to write (required)")
	export.Flags().StringVar(&rootOut, "root-out", "", "also write the emulator's test root (ASK || ARK) to `FILE`")
	export.Flags().BoolVar(&exportJSON, "json", false, "print the result as JSON")
	guests, decom := platformGuestsCmds(&pf)
	for _, s := range []*cobra.Command{init, status, export, guests, decom} {
		pf.add(s)
	}
	init.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.AddCommand(init, export, status, guests, decom)
	return c
}

func printInfo(w io.Writer, in *host.PlatformInfo, asJSON bool) error {
	if asJSON {
		e := json.NewEncoder(w)
		e.SetIndent("", "  ")
		return e.Encode(in)
	}
	host.WritePlatformInfo(w, in)
	return nil
}

func launchCmd() *cobra.Command {
	var pf pspFlags
	var o host.LaunchOptions
	var asJSON bool
	c := &cobra.Command{
		Use:   "launch",
		Short: "start QEMU A paused with the shim and measure it (LAUNCH_START, LAUNCH_UPDATE_DATA, LAUNCH_MEASURE)",
		Long: "launch starts QEMU with -S (no guest instruction runs), reads the flash back from QEMU,\n" +
			"runs LAUNCH_START with the owner's session (GODH, session, policy from session.json),\n" +
			"LAUNCH_UPDATE_DATA over exactly those bytes and LAUNCH_MEASURE, and writes\n" +
			"WORK/measurement.json for `verifier measure`. QEMU stays paused; continue with launch-finish.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			if o.Image == "" || o.Session == "" || o.Work == "" {
				return errors.New("--image, --session and --work are required")
			}
			o.Kind, o.State, o.Log = pf.kind, pf.state, cmd.ErrOrStderr()
			r, err := host.Launch(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), LaunchJSON{Work: o.Work, QEMUPid: r.Pid, Handle: uint32(r.Handle), Measurement: r.MeasureFile})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "launched: QEMU A pid %d paused in prelaunch, guest handle %d\nmeasurement: %s\nnext: verifier measure --measurement %s ..., then hostctl launch-finish --work %s\n",
				r.Pid, r.Handle, r.MeasureFile, r.MeasureFile, o.Work)
			return nil
		},
	}
	pf.add(c)
	c.Flags().StringVar(&o.Image, "image", "", "shim image `FILE` (from builder build; required)")
	c.Flags().StringVar(&o.Session, "session", "", "session `DIR` from verifier session (required)")
	c.Flags().StringVar(&o.Name, "name", "", "session file prefix `NAME` (default: the name in session.json)")
	c.Flags().StringVar(&o.Work, "work", "", "work `DIR` for QEMU A's sockets, logs and state (required)")
	c.Flags().StringVar(&o.Vars, "vars", "", "pflash1 content `FILE` (default: $SEVSHIM_OVMF_VARS, else Debian's template of the layout: OVMF_VARS_4M.fd, OVMF_VARS.fd)")
	c.Flags().Uint64Var(&o.MemoryMiB, "memory", 512, "guest RAM, `MIB` (mebibytes)")
	c.Flags().BoolVar(&o.TPM, "tpm", false, "give the VM a TPM (tpm-crb backed by an swtpm in WORK); its provider must receive with --tpm")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func launchFinishCmd() *cobra.Command {
	var work, secret string
	var asJSON bool
	c := &cobra.Command{
		Use:   "launch-finish",
		Short: "inject the LAUNCH_SECRET (optional), LAUNCH_FINISH, run the shim to READY",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if work == "" {
				return errors.New("--work is required")
			}
			if err := host.LaunchFinish(cmd.Context(), work, secret, cmd.ErrOrStderr()); err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), LaunchFinishJSON{Work: work, Ready: true, Secret: secret})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "running: the shim is READY on QEMU A; next: hostctl export --work %s --to PROVIDER.chain --out GUEST.pkg\n", work)
			return nil
		},
	}
	c.Flags().StringVar(&work, "work", "", "work `DIR` of hostctl launch (required)")
	c.Flags().StringVar(&secret, "secret", "", "`FILE`: secret.json from verifier secret")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func exportCmd() *cobra.Command {
	var o host.ExportOptions
	var asJSON bool
	c := &cobra.Command{
		Use:   "export",
		Short: "stop the guest and write it as a guest package for the provider (SEND_*)",
		Long: "export verifies the provider's chain (AMD roots, or the emulator's test root given with --root),\n" +
			"runs SEND_START against its PDH, migrates QEMU A into a pipe, wraps every RAM page into a\n" +
			"SEND_UPDATE_DATA packet, SEND_FINISH, and writes the package atomically. QEMU A quits.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Work == "" || o.Chain == "" || o.Out == "" {
				return errors.New("--work, --to and --out are required")
			}
			o.Log = cmd.ErrOrStderr()
			if isTerminal(cmd.ErrOrStderr()) {
				o.Bar = cmd.ErrOrStderr()
			}
			if o.Trust.RootPath != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), owner.TestRootWarning)
			}
			r, err := host.Export(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), ExportJSON{Out: r.Out, Bytes: r.Bytes, DataPages: r.DataPages, ZeroPages: r.ZeroPages,
					Records: r.Records, StreamBytes: r.StreamSize, ElapsedMS: r.Elapsed.Milliseconds()})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exported: %s (%d bytes; %d data pages as SEV packets, %d zero pages; migration stream %d bytes) in %.1fs\n",
				r.Out, r.Bytes, r.DataPages, r.ZeroPages, r.StreamSize, r.Elapsed.Seconds())
			return nil
		},
	}
	c.Flags().StringVar(&o.Work, "work", "", "work `DIR` of the launched guest (required)")
	c.Flags().StringVar(&o.Chain, "to", "", "the provider's chain `FILE` from hostctl platform export (required)")
	c.Flags().StringVar(&o.Out, "out", "", "guest package `FILE` to write (required; an existing file is refused unless --force)")
	c.Flags().BoolVar(&o.Force, "force", false, "replace an existing --out (it may be the only copy of an earlier exported guest)")
	c.Flags().StringVar(&o.Trust.RootPath, "root", "", "trust ONLY the emulator's TEST root: its `DIR` (holding ask_ark.cert) or that file")
	c.Flags().StringVar(&o.Trust.Product, "product", "", "require the embedded AMD root of this product `NAME`")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	testHold(c, "test-hold-after-first-packet", "tests only: hold `DURATION` after the first SEND_UPDATE_DATA packet", &o.Hooks.AfterFirstPacket)
	return c
}

func receiveCmd() *cobra.Command {
	var pf pspFlags
	var o host.ReceiveOptions
	var wait, nonceHex string
	var asJSON bool
	var lv *libvirtFlags
	c := &cobra.Command{
		Use:   "receive",
		Short: "check a guest package, RECEIVE_* it, start QEMU B with the BIOS bundle and report the shim's verdict",
		Long: "receive checks the whole package (structure, SHA-256 trailer, VM shape, sender PDH) and runs\n" +
			"RECEIVE_START, RECEIVE_UPDATE_DATA for every page (the PSP verifies each MAC) and RECEIVE_FINISH\n" +
			"before any QEMU starts. Then QEMU B loads the rebuilt stream (-incoming), gets the bundle over\n" +
			"fw_cfg, resumes and wakes the shim. Prints `accepted: version N, signer HEX` or\n" +
			"`refused: E0NN name` (exit status 3). --wait shell also waits for OVMF's UEFI shell on COM1.\n" +
			"--nonce HEX passes the owner's 32-byte nonce to the shim (fw_cfg opt/org.sevshim/nonce). The shim's\n" +
			"receipt line (`SEVSHIM RECEIPT <hex>`, MACed with the owner's key, which this host never has) is\n" +
			"printed as `receipt: ...` and recorded in WORK/receive.json for `verifier receipt --from`.\n" +
			"--timeline prints each step in ms (docs/hostctl.md). On a terminal, stderr shows page bars\n" +
			"(receive, load QEMU B); otherwise none.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := pf.check(); err != nil {
				return err
			}
			if o.Package == "" || o.Bundle == "" || o.Work == "" {
				return errors.New("--package, --bios and --work are required")
			}
			switch wait {
			case "handoff":
			case "shell":
				o.WaitShell = true
			default:
				return fmt.Errorf("--wait %q: want handoff or shell", wait)
			}
			if nonceHex != "" {
				n, err := hex.DecodeString(nonceHex)
				if err != nil || len(n) != receipt.NonceSize {
					return fmt.Errorf("--nonce %q: want the owner's %d-byte nonce as %d hex digits", nonceHex, receipt.NonceSize, 2*receipt.NonceSize)
				}
				o.Nonce = n
			}
			if err := lv.apply(&o, asJSON); err != nil {
				return err
			}
			o.Kind, o.State, o.Log = pf.kind, pf.state, cmd.ErrOrStderr()
			if isTerminal(cmd.ErrOrStderr()) {
				o.Bar = cmd.ErrOrStderr()
			}
			v, err := host.Receive(cmd.Context(), o)
			out := cmd.OutOrStdout()
			if asJSON {
				if v != nil && (err == nil || !v.Accepted && v.Line != "") {
					if jerr := writeJSON(out, receiveJSON(v, o.Work)); jerr != nil {
						return jerr
					}
				}
				return err
			}
			if v != nil && v.Accepted && err != nil {
				// The verdict came before the failure (or interruption): say it.
				fmt.Fprintf(out, "accepted: version %d, signer %s\n", v.Version, v.Signer)
			}
			if v != nil && !v.Accepted && v.Line != "" {
				if v.Code != 0 {
					fmt.Fprintf(out, "refused: %s\n", v.Code)
				} else {
					fmt.Fprintf(out, "refused: %q (a code this hostctl does not know)\n", v.Line)
				}
			}
			if v != nil && v.Receipt != "" {
				fmt.Fprintf(out, "receipt: %s\n", v.Receipt)
			}
			if v != nil && o.Timeline {
				defer host.WriteTimeline(out, v.Timeline)
			}
			if err != nil {
				return err
			}
			if o.DefineOnly {
				lv.printDefined(out, o.Work)
				return nil
			}
			fmt.Fprintf(out, "accepted: version %d, signer %s\n", v.Version, v.Signer)
			if v.Shell {
				fmt.Fprintln(out, "OVMF reached its UEFI Interactive Shell")
			}
			if v.Pid != 0 {
				fmt.Fprintf(out, "QEMU B runs detached (pid %d); stop it with: hostctl stop --work %s\n", v.Pid, o.Work)
			} else {
				fmt.Fprintln(out, "QEMU B stopped")
			}
			return nil
		},
	}
	pf.add(c)
	c.Flags().StringVar(&o.Kernel, "kernel", "", "boot this guest kernel `FILE` after the chain (QEMU B -kernel; OVMF loads it after the hand-off); also gives B the guest agent's virtio-serial port WORK/agent.sock")
	c.Flags().StringVar(&o.Initrd, "initrd", "", "the guest's initramfs `FILE` (QEMU B -initrd; needs --kernel)")
	c.Flags().StringVar(&o.Append, "append", "", "the guest kernel's command `LINE` (QEMU B -append; needs --kernel)")
	c.Flags().StringVar(&o.Package, "package", "", "guest package `FILE` from hostctl export (required)")
	c.Flags().StringVar(&o.Bundle, "bios", "", "BIOS bundle `FILE` from builder sign-bios (required)")
	c.Flags().StringVar(&o.Vars, "vars", "", "var store `FILE` for pflash1 and opt/org.sevshim/vars (default: $SEVSHIM_OVMF_VARS, else Debian's template of the layout: OVMF_VARS_4M.fd, OVMF_VARS.fd)")
	c.Flags().StringVar(&o.Work, "work", "", "work `DIR` for QEMU B (required)")
	c.Flags().StringVar(&wait, "wait", "handoff", "what to wait for, `WHAT`: handoff (the shim's verdict) or shell (also OVMF's shell)")
	c.Flags().BoolVar(&o.Stop, "stop", false, "quit QEMU B at the end instead of leaving it running")
	c.Flags().BoolVar(&o.TPM, "tpm", false, "give QEMU B a TPM (tpm-crb backed by an swtpm in WORK); required exactly when the package's VM has one")
	c.Flags().StringVar(&nonceHex, "nonce", "", "the owner's receipt nonce, 64 `HEX` digits (fw_cfg opt/org.sevshim/nonce)")
	c.Flags().BoolVar(&o.Timeline, "timeline", false, "print the boot timeline in ms (package checked, QEMU B started, stream loaded, resumed, WAKE, LOADED, VERIFIED, FLASHED, HANDOFF, OVMF); waits up to 60 s for OVMF's first output")
	c.Flags().BoolVar(&asJSON, "json", false, "print the verdict as JSON (also on a refusal, exit status 3)")
	lv = addLibvirtFlags(c)
	testHold(c, "test-hold-before-feed", "tests only: hold `DURATION` after QEMU B started, before its stream is fed", &o.Hooks.BeforeFeed)
	return c
}

// evidenceFlags checks the flags every evidence command requires and parses its nonce, given
// as hex.
func evidenceFlags(work, out, nonceHex string) ([]byte, error) {
	if work == "" || out == "" || nonceHex == "" {
		return nil, errors.New("--work, --nonce and --out are required")
	}
	n, err := hex.DecodeString(nonceHex)
	if err != nil || len(n) == 0 || len(n) > host.MaxNonce {
		return nil, fmt.Errorf("--nonce %q: want 1..%d bytes as hex digits (e.g. from: openssl rand -hex 32)", nonceHex, host.MaxNonce)
	}
	return n, nil
}

func attestCmd() *cobra.Command {
	var o host.AttestOptions
	var nonceHex string
	var asJSON bool
	c := &cobra.Command{
		Use:   "attest --work WB --nonce HEX --out EVIDENCE.json [--event-log FILE] [--timeout D] [--json]",
		Short: "ask the guest agent of a running received guest for TPM evidence over a nonce (the VM keeps running)",
		Long: "attest talks to the guest agent of a guest received with --kernel and --tpm, over its\n" +
			"virtio-serial port (the socket WB/agent.sock): it sends --nonce, and the agent, inside the\n" +
			"running guest, reads the shim's PCR in every bank through the guest's TPM and quotes it over\n" +
			"the nonce with a fresh attestation key. attest writes that evidence to EVIDENCE.json\n" +
			"(sevshim-tpm-evidence-1, atomically) and, with --event-log, the firmware's TCG event log the\n" +
			"guest sees. The VM keeps running; ask as often as you like. A guest still booting is waited\n" +
			"for, up to --timeout. The TPM is the provider's (swtpm), so this evidence is no proof against\n" +
			"the provider (docs/tpm.md); the shim's receipt is (verifier receipt).\n" +
			"Check the evidence with: verifier attest --evidence EVIDENCE.json --image SHIM.fd --bundle BUNDLE --nonce HEX",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := evidenceFlags(o.Work, o.Out, nonceHex)
			if err != nil {
				return err
			}
			o.Nonce = n
			r, err := host.Attest(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, AttestJSON{Out: r.Out, PCR: r.Evidence.PCR, Banks: r.Evidence.BankNames(),
					Nonce: hex.EncodeToString(r.Evidence.Nonce), CocoSecret: r.CocoSecret, EventLogBytes: len(r.EventLog),
					EventLog: r.EventLogFile, QEMUPid: r.Pid, Receipt: r.Receipt})
			}
			secret := "not present (this guest kernel has no SEV secret driver: docs/tpm.md)"
			if r.CocoSecret {
				secret = "present (/sys/kernel/security/secrets/coco)"
			}
			fmt.Fprintf(out, "PCR %d in banks %s, quoted inside the guest with nonce %x\nlaunch secret in the guest: %s\nevent log: %d bytes",
				r.Evidence.PCR, strings.Join(r.Evidence.BankNames(), ", "), r.Evidence.Nonce, secret, len(r.EventLog))
			if r.EventLogFile != "" {
				fmt.Fprintf(out, " (wrote %s)", r.EventLogFile)
			}
			fmt.Fprintf(out, "\nwrote %s; QEMU B (pid %d) keeps running\nnext: verifier attest --evidence %s --image SHIM.fd --bundle BUNDLE --nonce %s\n",
				r.Out, r.Pid, r.Out, nonceHex)
			return nil
		},
	}
	c.Flags().StringVar(&o.Work, "work", "", "work `DIR` of hostctl receive --kernel --tpm (required)")
	c.Flags().StringVar(&nonceHex, "nonce", "", "the verifier's fresh nonce in `HEX`, 1..64 bytes (required)")
	c.Flags().StringVar(&o.Out, "out", "", "evidence `FILE` to write (JSON, sevshim-tpm-evidence-1; required)")
	c.Flags().StringVar(&o.EventLog, "event-log", "", "also write the firmware's TCG event log the guest sees to `FILE` (binary, TCG PC Client format)")
	c.Flags().DurationVar(&o.Timeout, "timeout", host.DefaultAttestTimeout, "bound for the whole exchange, a guest still booting included (`DURATION`)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func tpmQuoteCmd() *cobra.Command {
	var o host.QuoteOptions
	var nonceHex string
	var asJSON bool
	c := &cobra.Command{
		Use:   "tpm-quote --work WB --nonce HEX --out EVIDENCE.json [--pcr N] [--json]",
		Short: "read the TPM of a guest received with --tpm but no OS (THIS ENDS THE VM) and write the evidence for verifier attest",
		Long: "tpm-quote is for a guest with no OS after the chain (OVMF's shell): with a guest OS use\n" +
			"hostctl attest, which asks the guest agent and keeps the VM running (docs/tpm.md).\n" +
			"tpm-quote waits until OVMF booted on QEMU B (its UEFI shell on COM1, at most 240 s), then\n" +
			"ENDS THE VM: it SIGKILLs QEMU B. This is the only way to read the TPM here: swtpm serves a\n" +
			"single client, which is QEMU while it runs, and a normal quit makes QEMU shut the TPM down\n" +
			"and lose the PCRs (docs/tpm.md). swtpm keeps running with its PCRs; tpm-quote takes over its\n" +
			"data channel, reads the PCR in every active bank and a quote over it carrying --nonce (signed\n" +
			"by a fresh attestation key), writes EVIDENCE.json atomically and stops swtpm.\n" +
			"The default PCR is the one the shim policy in the received guest names (tpm_pcr).\n" +
			"Check the evidence with: verifier attest --evidence EVIDENCE.json --image SHIM.fd --bundle BUNDLE --nonce HEX",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := evidenceFlags(o.Work, o.Out, nonceHex)
			if err != nil {
				return err
			}
			o.Nonce, o.Log = n, cmd.ErrOrStderr()
			r, err := host.TPMQuote(cmd.Context(), o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, TPMQuoteJSON{Out: r.Out, PCR: r.Evidence.PCR, Banks: r.Evidence.BankNames(),
					Nonce: hex.EncodeToString(r.Evidence.Nonce), QEMUPid: r.QEMUPid})
			}
			if r.QEMUPid != 0 {
				fmt.Fprintf(out, "QEMU B (pid %d) ended after OVMF booted (SIGKILL: the VM is gone)\n", r.QEMUPid)
			}
			fmt.Fprintf(out, "PCR %d in banks %s, quoted with nonce %x\nwrote %s; swtpm stopped\nnext: verifier attest --evidence %s --image SHIM.fd --bundle BUNDLE --nonce %s\n",
				r.Evidence.PCR, strings.Join(r.Evidence.BankNames(), ", "), r.Evidence.Nonce, r.Out, r.Out, nonceHex)
			return nil
		},
	}
	c.Flags().StringVar(&o.Work, "work", "", "work `DIR` of hostctl receive --tpm (required)")
	c.Flags().StringVar(&nonceHex, "nonce", "", "the verifier's fresh nonce in `HEX` (required)")
	c.Flags().StringVar(&o.Out, "out", "", "evidence `FILE` to write (JSON, sevshim-tpm-evidence-1; required)")
	c.Flags().IntVar(&o.PCR, "pcr", -1, "PCR `N` to read (default: the shim policy's tpm_pcr)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}

func stopCmd() *cobra.Command {
	var work string
	var asJSON bool
	c := &cobra.Command{
		Use:   "stop",
		Short: "end the QEMU of a work directory, and its swtpm if it has one; release its guest context",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if work == "" {
				return errors.New("--work is required")
			}
			pid, err := host.Stop(cmd.Context(), work)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), StopJSON{Work: work, QEMUPid: pid})
			}
			if pid == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "no QEMU running in %s\n", work)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "stopped QEMU pid %d\n", pid)
			}
			return nil
		},
	}
	c.Flags().StringVar(&work, "work", "", "work `DIR` (required)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return c
}
