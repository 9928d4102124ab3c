package psp

import (
	"fmt"
	"os"
)

// Backend kinds for Open.
const (
	KindEmulator = "emu"
	KindLinux    = "linux"
)

// Open returns a backend: "emu" opens (or creates) the emulated platform whose state lives
// in stateDir; "linux" opens /dev/sev (stateDir is ignored). The environment variable
// SEVSHIM_EMU_ROOT, if set, names a directory holding a shared test root (created on first
// use) for newly created emulated platforms, so that several platforms chain to one "AMD".
func Open(kind, stateDir string) (PSP, error) {
	switch kind {
	case KindEmulator, "emulator":
		return OpenEmulator(stateDir, &EmulatorOptions{RootDir: os.Getenv("SEVSHIM_EMU_ROOT")})
	case KindLinux, "hw", "hardware":
		return OpenDevice(DefaultDevice)
	}
	return nil, fmt.Errorf("psp: unknown backend %q: want %q (software emulator with a state directory) or %q (/dev/sev on an SEV host)", kind, KindEmulator, KindLinux)
}
