package host

import (
	"fmt"
	"io"

	"github.com/sevshim/sevshim/pkg/psp"
)

// GuestInfo is one guest context of the platform (`hostctl platform guests`).
type GuestInfo struct {
	Handle uint32 `json:"handle"`
	State  string `json:"state"`
	Policy uint32 `json:"policy"`
	ASID   uint32 `json:"asid"`
}

// guestLister is implemented by backends that can enumerate their guest contexts (the
// emulator; /dev/sev has no such command, KVM owns the contexts of its VMs).
type guestLister interface {
	Guests() ([]psp.GuestStatus, error)
}

// PlatformGuests lists the guest contexts of an existing platform.
func PlatformGuests(kind, state string) ([]GuestInfo, error) {
	p, err := openPSP(kind, state)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	gl, ok := p.(guestLister)
	if !ok {
		return nil, fmt.Errorf("the %s backend cannot list guest contexts: on /dev/sev KVM owns them and releases them when the VM ends", p.Kind())
	}
	gs, err := gl.Guests()
	if err != nil {
		return nil, err
	}
	out := []GuestInfo{}
	for _, g := range gs {
		out = append(out, GuestInfo{Handle: uint32(g.Handle), State: g.State.String(), Policy: uint32(g.Policy), ASID: g.ASID})
	}
	return out, nil
}

// WriteGuests prints the guest contexts in plain words.
func WriteGuests(w io.Writer, state string, gs []GuestInfo) {
	if len(gs) == 0 {
		fmt.Fprintf(w, "no guest contexts in %s\n", state)
		return
	}
	fmt.Fprintf(w, "%d guest context(s) in %s:\n", len(gs), state)
	for _, g := range gs {
		fmt.Fprintf(w, "  handle %d  %-8s policy 0x%x  asid %d\n", g.Handle, g.State, g.Policy, g.ASID)
	}
	fmt.Fprintf(w, "free one that no work directory uses with: hostctl platform decommission --state %s --handle N\n", state)
}

// DecommissionGuest runs DECOMMISSION on one guest context of an existing platform.
func DecommissionGuest(kind, state string, h uint32) error {
	if h == 0 {
		return fmt.Errorf("--handle 0 names no guest (see hostctl platform guests)")
	}
	p, err := openPSP(kind, state)
	if err != nil {
		return err
	}
	defer p.Close()
	if _, err := p.GuestStatus(psp.Handle(h)); err != nil {
		return fmt.Errorf("no guest context with handle %d in %s (see hostctl platform guests): %w", h, state, err)
	}
	return p.Decommission(psp.Handle(h))
}

// releaseGuest decommissions handle h of the platform a work directory recorded; a context
// that is already gone is not an error. Used when the guest's VM ends (stop, refusals,
// failures) so that no context outlives its QEMU.
func releaseGuest(kind, state string, h uint32, log io.Writer) {
	if h == 0 {
		return
	}
	p, err := openPSP(kind, state)
	if err != nil {
		logf(log, "note: guest context %d not released: %v", h, err)
		return
	}
	defer p.Close()
	if _, err := p.GuestStatus(psp.Handle(h)); err != nil {
		return
	}
	if err := p.Decommission(psp.Handle(h)); err != nil {
		logf(log, "note: DECOMMISSION of guest context %d: %v", h, err)
	}
}
