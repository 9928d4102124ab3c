package host

import (
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/psp"
	"github.com/sevshim/sevshim/pkg/sev"
)

// openPSP opens an existing platform: "emu" needs a state directory that `hostctl platform
// init` made (a mistyped --state must not silently create a new platform with a new
// identity), "linux" uses /dev/sev.
func openPSP(kind, state string) (psp.PSP, error) {
	if err := requirePlatform(kind, state); err != nil {
		return nil, err
	}
	return openOrCreatePSP(kind, state)
}

// requirePlatform refuses an emulated --state directory without a platform (platform.json).
func requirePlatform(kind, state string) error {
	if kind != "" && kind != psp.KindEmulator && kind != "emulator" {
		return nil
	}
	if state == "" {
		return fmt.Errorf("the emulated PSP needs --state DIR (its persistent identity lives there)")
	}
	if _, err := os.Stat(filepath.Join(state, "platform.json")); err != nil {
		return fmt.Errorf("no platform in %s: run hostctl platform init --state %s", state, state)
	}
	return nil
}

// openOrCreatePSP is openPSP that creates the emulated platform if --state has none (only
// `hostctl platform init` does that).
func openOrCreatePSP(kind, state string) (psp.PSP, error) {
	if kind == "" {
		kind = psp.KindEmulator
	}
	if kind == psp.KindEmulator && state == "" {
		return nil, fmt.Errorf("the emulated PSP needs --state DIR (its persistent identity lives there)")
	}
	if kind == psp.KindEmulator {
		// The platform's private keys live there (docs/hostctl.md): a private directory.
		abs, err := privateDir("--state", state)
		if err != nil {
			return nil, err
		}
		state = abs
	}
	return psp.Open(kind, state)
}

// errHardwareGuest explains why guest commands refuse the hardware backend.
var errHardwareGuest = fmt.Errorf("launch, export and receive drive QEMU under TCG with the emulated PSP; " +
	"on real SEV hardware the PSP must encrypt the VMM's mapping of guest memory, which needs QEMU's sev-guest " +
	"object (launch) and a VMM with SEV migration support (export/receive), which upstream QEMU lacks " +
	"(see docs/hostctl.md); use --kind emu")

// openGuestPSP opens a backend for guest commands (emulator only, see errHardwareGuest).
func openGuestPSP(kind, state string) (psp.PSP, error) {
	if err := checkGuestKind(kind); err != nil {
		return nil, err
	}
	return openPSP(kind, state)
}

func checkGuestKind(kind string) error {
	if kind != "" && kind != psp.KindEmulator && kind != "emulator" {
		return errHardwareGuest
	}
	return nil
}

// PlatformInfo is what `hostctl platform status` prints.
type PlatformInfo struct {
	Kind       string `json:"kind"`
	State      string `json:"state,omitempty"`
	API        string `json:"api_version"`
	Build      uint8  `json:"build"`
	Platform   string `json:"platform_state"`
	Owner      string `json:"owner"`
	Guests     uint32 `json:"guests"`
	PDHKey     string `json:"pdh_key_sha256"`
	ChipID     string `json:"chip_id"`
	TestRoot   string `json:"test_root,omitempty"`
	ChainNotes string `json:"notes,omitempty"`
}

// PlatformInit creates (emulator) or opens (hardware) the platform and returns its status.
func PlatformInit(kind, state string) (*PlatformInfo, error) {
	p, err := openOrCreatePSP(kind, state)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return platformInfo(p, state)
}

// PlatformStatus reports an existing platform; unlike init it refuses to create one.
func PlatformStatus(kind, state string) (*PlatformInfo, error) {
	p, err := openPSP(kind, state)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	return platformInfo(p, state)
}

func platformInfo(p psp.PSP, state string) (*PlatformInfo, error) {
	st, err := p.PlatformStatus()
	if err != nil {
		return nil, err
	}
	pdh, _, _, _, err := psp.Export(p)
	if err != nil {
		return nil, err
	}
	id, err := psp.ChipID(p)
	if err != nil {
		return nil, err
	}
	k := pdh.KeyDigest()
	in := &PlatformInfo{Kind: p.Kind(), State: state, API: fmt.Sprintf("%d.%d", st.APIMajor, st.APIMinor), Build: st.Build,
		Platform: st.State.String(), Owner: "self-owned", Guests: st.GuestCount, PDHKey: hex.EncodeToString(k[:]), ChipID: hex.EncodeToString(id)}
	if st.OwnerExternal {
		in.Owner = "externally owned (OCA imported)"
	}
	if e, ok := p.(*psp.Emulator); ok {
		in.TestRoot = filepath.Join(e.Dir(), "certs", "ask_ark.cert")
	}
	return in, nil
}

// WritePlatformInfo prints the status in plain words.
func WritePlatformInfo(w io.Writer, in *PlatformInfo) {
	fmt.Fprintf(w, "platform: %s", in.Kind)
	if in.State != "" {
		fmt.Fprintf(w, " (state %s)", in.State)
	}
	fmt.Fprintf(w, "\n  firmware API %s build %d, %s, %s, %d guest context(s)\n", in.API, in.Build, in.Platform, in.Owner, in.Guests)
	fmt.Fprintf(w, "  PDH key sha256 %s\n  chip id %s...\n", in.PDHKey, in.ChipID[:32])
	if in.TestRoot != "" {
		fmt.Fprintf(w, "  EMULATED PSP: its CEK is signed by a TEST root, not AMD (%s);\n  verifiers must be given that root explicitly (--root)\n", in.TestRoot)
	}
}

// PlatformExport writes the platform's chain (PDH || PEK || OCA || CEK || ASK || ARK) to out.
// For the emulator the CEK is the test root's signed one and ASK || ARK its test root; on
// hardware PDH_CERT_EXPORT gives an unsigned CEK and no AMD part (fetch the signed CEK from
// AMD's key server, sev.KDSCEKURL). rootOut, if set, also receives ASK || ARK (emulator).
func PlatformExport(kind, state, out, rootOut string) (*sev.Chain, error) {
	p, err := openPSP(kind, state)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	c, err := psp.FullChain(p)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(out, c.Marshal(), 0o644); err != nil {
		return nil, err
	}
	if rootOut != "" {
		ks, ok := p.(psp.KeyServer)
		if !ok {
			return nil, fmt.Errorf("--root-out: the %s backend has no test root; real platforms chain to AMD's roots", p.Kind())
		}
		b, err := ks.AMDChain()
		if err != nil {
			return nil, err
		}
		if err := atomicfile.WriteFile(rootOut, b, 0o644); err != nil {
			return nil, err
		}
	}
	return c, nil
}
