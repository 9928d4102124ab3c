package psp

import "github.com/sevshim/sevshim/pkg/sev"

// Guests lists every guest context the emulated platform holds (GUEST_STATUS of each
// handle), in handle order. The firmware has no such command (SEV API 55766 keeps guest
// contexts per handle); the emulator can list them because each one is a file in its state
// directory.
func (e *Emulator) Guests() ([]GuestStatus, error) {
	var out []GuestStatus
	err := e.withLock(func(*emuPlatform) error {
		hs, err := e.guestHandles()
		if err != nil {
			return err
		}
		for _, h := range hs {
			g, err := e.loadGuest("GUEST_STATUS", h)
			if err != nil {
				return err
			}
			out = append(out, GuestStatus{Handle: h, Policy: sev.Policy(g.Policy), ASID: g.ASID, State: g.State})
		}
		return nil
	})
	return out, err
}
