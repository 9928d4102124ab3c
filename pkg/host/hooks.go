package host

import (
	"context"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// Hooks are points where a test holds or breaks a flow at a known step. Every field is
// optional and normal use sets none; they are options of the flow, never read from the
// environment (hostctl has hidden flags for the tests that run it as a program).
type Hooks struct {
	// AfterFirstPacket runs once in an export, right after the first SEND_UPDATE_DATA
	// packet: the export is then mid-stream.
	AfterFirstPacket func(ctx context.Context) error
	// BeforeFeed runs once in a receive, when QEMU B has started and waits for its stream.
	BeforeFeed func(ctx context.Context) error
	// BeforeWake runs in a receive when QEMU B has loaded the guest (paused), right before
	// the resume and the wake-up NMIs, with QEMU B.
	BeforeWake func(ctx context.Context, vm vmm.VM) error
	// BeforePublish runs in an export when the package is complete and synced, right before
	// it gets its name (to make the naming fail for real).
	BeforePublish func() error
}

// Hold is a hook that waits d, or until ctx ends (then it returns ctx's error).
func Hold(d time.Duration) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// once runs hook the first time it is called (if set).
func once(hook func(context.Context) error, done *bool, ctx context.Context) error {
	if hook == nil || *done {
		return nil
	}
	*done = true
	return hook(ctx)
}
