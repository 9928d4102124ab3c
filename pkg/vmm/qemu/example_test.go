package qemu_test

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm/qemu"
)

// The provider-side flow of sevshim: run the shim to READY once, save that state, then boot
// any number of fresh QEMUs from it with a BIOS bundle as fw_cfg files. (Compiled, not run:
// it needs a built shim image.)
func Example_chain() {
	ctx := context.Background()
	shim, vars, state := "shim.fd", "vm-vars.fd", "ready.state"

	a, err := qemu.Start(ctx, qemu.Config{
		Pflash:   []qemu.Pflash{{Unit: 0, File: shim, Snapshot: true}, {Unit: 1, File: vars, Snapshot: true}},
		Debugcon: true,
	})
	if err != nil {
		panic(err)
	}
	defer a.Close()
	if _, err := a.Debugcon().WaitString(ctx, "SEVSHIM READY", time.Minute); err != nil {
		panic(err)
	}
	if _, err := a.SaveState(ctx, state); err != nil { // stop, migrate, quit
		panic(err)
	}

	b, err := qemu.Start(ctx, qemu.Config{
		Pflash:         []qemu.Pflash{{Unit: 0, File: shim, Snapshot: true}, {Unit: 1, File: vars}},
		FwCfg:          qemu.ShimFiles("bios.manifest", "bios.fd", vars),
		Debugcon:       true,
		RebootShutdown: true,
		Incoming:       qemu.IncomingFile(state),
	})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	if _, err := b.WaitIncoming(ctx, time.Minute); err != nil {
		panic(err)
	}
	b.Resume(ctx)
	b.NMI(ctx) // wakes the shim
	l, err := b.Debugcon().WaitLine(ctx, regexp.MustCompile(`^SEVSHIM (HANDOFF|ERROR)`), time.Minute)
	if err != nil {
		panic(err)
	}
	fmt.Println(l.Text)
}
