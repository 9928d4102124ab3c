//go:build !linux

package psp

import "errors"

// DefaultDevice is the SEV firmware device node on Linux.
const DefaultDevice = "/dev/sev"

// OpenDevice refuses: the hardware backend exists only on Linux.
func OpenDevice(path string) (PSP, error) {
	return nil, errors.New("psp: the SEV hardware backend needs Linux (/dev/sev); use the emulator backend")
}
