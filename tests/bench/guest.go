package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/sevshim/sevshim/pkg/format/agentproto"
	"github.com/sevshim/sevshim/pkg/format/console"
	"github.com/sevshim/sevshim/pkg/guest/agent"
	"github.com/sevshim/sevshim/pkg/vmm"
	"github.com/sevshim/sevshim/pkg/vmm/qemu"
	"github.com/sevshim/sevshim/tests/bench/figures"
	"github.com/sevshim/sevshim/tests/harness"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// guestFiles is make images' guest (build/guest).
type guestFiles struct{ kernel, initrd, agent string }

func findGuest() (*guestFiles, error) {
	b, err := repo.BuildDir()
	if err != nil {
		return nil, err
	}
	g := &guestFiles{filepath.Join(b, "guest", "vmlinuz"), filepath.Join(b, "guest", "initramfs.cpio"), filepath.Join(b, "guest", "agent")}
	if err := repo.RequireFiles(g.kernel, g.initrd, g.agent); err != nil {
		return nil, fmt.Errorf("%v: run make images first", err)
	}
	return g, nil
}

var reAgentStarted = regexp.MustCompile(`^` + regexp.QuoteMeta(agentproto.ConsoleReady) + `$`)

// guestBoot resumes B from state with the guest kernel (direct boot) and the agent's port,
// and splits B start -> the agent's READY on its port at cont, HANDOFF, the kernel's start
// (the agent's uptime line minus the uptime it prints), and the agent's first line.
func guestBoot(st *setup, g *guestFiles, state string, i int, rep *figures.Report) error {
	ctx, cancel := context.WithTimeout(context.Background(), *flagTimeout)
	defer cancel()
	dir := filepath.Join(st.dir, fmt.Sprintf("guest-%d", i))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	sock := filepath.Join(dir, "agent.sock")
	vm, _, err := harness.StartB(ctx, harness.BSpec{Shim: st.shim, Manifest: st.manifest, Image: st.ovmf,
		Incoming: qemu.IncomingFile(state), Dir: dir, Kernel: g.kernel, Initrd: g.initrd, Append: harness.GuestKernelOptions,
		Ports: []vmm.Port{{Name: agentproto.PortName, Socket: sock}}})
	if err != nil {
		return err
	}
	defer vm.Close()
	cont, err := vm.WakeIncoming(ctx, harness.ReadyTimeout)
	if err != nil {
		return failure(vm, "guest B: wake", err)
	}
	handoff, err := vm.Debugcon().WaitLine(ctx, console.StepRE("HANDOFF"), harness.StepTimeout)
	if err != nil {
		return failure(vm, "guest B: waiting for HANDOFF", err)
	}
	started, err := vm.Serial().WaitLine(ctx, reAgentStarted, harness.OVMFTimeout)
	if err != nil {
		return failure(vm, "guest B: waiting for the agent's first line", err)
	}
	upLine, err := vm.Serial().WaitLine(ctx, agent.UptimeRE(), harness.StepTimeout)
	if err != nil {
		return failure(vm, "guest B: waiting for the agent's uptime line", err)
	}
	up, _ := agent.ParseUptime(upLine.Text)
	kernel := upLine.Time.Add(-up)
	c, err := net.DialTimeout("unix", sock, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(harness.StepTimeout))
	m, err := agentproto.ReadMessage(bufio.NewReader(c))
	if err != nil {
		return failure(vm, "guest B: reading the agent's port", err)
	}
	if m.Verb != agentproto.VerbReady {
		return fmt.Errorf("guest B: the agent's first message %+v, want READY", m)
	}
	ready := time.Now()
	rep.Add("guest.receive_to_ready", ready.Sub(vm.Started()).Seconds())
	rep.Add("guest.load", cont.Sub(vm.Started()).Seconds())
	rep.Add("guest.shim", handoff.Time.Sub(cont).Seconds())
	rep.Add("guest.ovmf", kernel.Sub(handoff.Time).Seconds())
	rep.Add("guest.kernel", started.Time.Sub(kernel).Seconds())
	rep.Add("guest.agent", ready.Sub(started.Time).Seconds())
	return nil
}
