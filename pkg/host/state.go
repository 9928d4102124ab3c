package host

import "fmt"

// The work-directory state machine: which stages a launch (W/launch.json) and a receive
// (WB/receive.json) go through, which moves between them are legal, and the files each
// stage owns. Every flow changes a stage with move, which refuses an illegal move (a bug,
// or a record edited by hand), so that the records always tell a later command the truth.
//
// Launch work directory W:
//
//	(none) ──launch──▶ measured ──launch-finish──▶ running ──export──▶ exported
//	                      │  ▲                        │
//	                      │  └─launch (again)         │
//	                      └───────stop────▶ stopped ◀─┘ stop (or QEMU A gone)
//	                                          └──launch──▶ measured
//
//	measured   QEMU A paused in prelaunch, LAUNCH_MEASURE done. Files: launch.json,
//	           measurement.json, shim.fd, vars.fd, the VM's files (qemu.pid, qmp.sock,
//	           gdb.sock, consoles, qemu.log) and, with --tpm, swtpm's (tpm/, swtpm.*).
//	running    LAUNCH_FINISH done, the shim printed READY and halted. As measured, without
//	           gdb.sock (guest-memory access ends at LAUNCH_FINISH).
//	exported   SEND_FINISH done, the package is named, QEMU A and swtpm are gone, the
//	           context released. Files: launch.json (naming the package), measurement.json.
//	stopped    hostctl stop ended QEMU A and released the context. Files: launch.json.
//
// Receive work directory WB:
//
//	(any record) ──receive──▶ loading ──▶ running ──stop──▶ stopped
//	                             │           ├──tpm-quote──▶ killed for tpm-quote ──▶ quoted
//	                             │           └──▶ failed, interrupted (a later step)
//	                             ├──▶ refused (the shim's verdict), failed, interrupted
//	                             └──stop (or --stop)──▶ stopped
//	(a stopped, failed or interrupted record whose swtpm still runs) ──tpm-quote──▶ quoted
//
//	loading    RECEIVE_FINISH done, QEMU B started and loading the rebuilt stream. Files:
//	           receive.json (with the guest context), bios.manifest, bios.fd, vars.fd,
//	           flash0.fd, nonce (if given), the VM's files, swtpm's (--tpm).
//	running    the shim handed off (accepted); QEMU B runs OVMF.
//	refused    the shim refused the BIOS; QEMU B stopped, context released.
//	failed, interrupted
//	           a step failed or hostctl was interrupted; QEMU B stopped, context released.
//	stopped    hostctl stop (or receive --stop) ended QEMU B, context released.
//	killed for tpm-quote, quoted
//	           tpm-quote SIGKILLed QEMU B (swtpm keeps the PCRs), then read them and
//	           stopped swtpm.

// Receive stages (receive.json "stage"); the launch stages are StageMeasured, StageRunning,
// StageExported and StageStopped.
const (
	ReceiveLoading     = "loading"
	ReceiveRunning     = "running"
	ReceiveRefused     = "refused"
	ReceiveFailed      = "failed"
	ReceiveInterrupted = "interrupted"
	ReceiveStopped     = "stopped"
	ReceiveKilledTPM   = "killed for tpm-quote"
	ReceiveQuoted      = "quoted"
)

// launchMoves are the legal moves of a launch work directory ("" is no record yet).
var launchMoves = map[string][]string{
	"":            {StageMeasured},
	StageMeasured: {StageMeasured, StageRunning, StageStopped},
	StageRunning:  {StageExported, StageStopped},
	StageStopped:  {StageMeasured},
	StageExported: {},
}

// receiveMoves are the legal moves of a receive work directory. A receive may start over
// any earlier record (Receive itself refuses one whose guest still runs); tpm-quote reads a
// swtpm that outlived its QEMU whatever ended that QEMU.
var receiveMoves = map[string][]string{
	"":                 {ReceiveLoading},
	ReceiveLoading:     {ReceiveLoading, ReceiveRunning, ReceiveRefused, ReceiveFailed, ReceiveInterrupted, ReceiveStopped},
	ReceiveRunning:     {ReceiveLoading, ReceiveStopped, ReceiveFailed, ReceiveInterrupted, ReceiveKilledTPM, ReceiveQuoted},
	ReceiveKilledTPM:   {ReceiveLoading, ReceiveQuoted},
	ReceiveRefused:     {ReceiveLoading},
	ReceiveFailed:      {ReceiveLoading, ReceiveQuoted},
	ReceiveInterrupted: {ReceiveLoading, ReceiveQuoted},
	ReceiveStopped:     {ReceiveLoading, ReceiveQuoted},
	ReceiveQuoted:      {ReceiveLoading},
}

// checkMove refuses a move that table does not allow.
func checkMove(what string, table map[string][]string, from, to string) error {
	next, known := table[from]
	if !known {
		return fmt.Errorf("%s: unknown stage %q", what, from)
	}
	for _, n := range next {
		if n == to {
			return nil
		}
	}
	return fmt.Errorf("%s: stage %q cannot become %q", what, from, to)
}

// move sets the launch's stage if the move is legal.
func (ls *LaunchState) move(to string) error {
	if err := checkMove(LaunchJSON, launchMoves, ls.Stage, to); err != nil {
		return err
	}
	ls.Stage = to
	return nil
}

// move sets the receive's stage if the move is legal.
func (rs *ReceiveState) move(to string) error {
	if err := checkMove(ReceiveJSON, receiveMoves, rs.Stage, to); err != nil {
		return err
	}
	rs.Stage = to
	return nil
}
