package host

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/sevshim/sevshim/pkg/atomicfile"
	"github.com/sevshim/sevshim/pkg/attest"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/migrate"
	"github.com/sevshim/sevshim/pkg/vmm"
)

// Files of a work directory whose VM has a TPM (--tpm): one swtpm per VM, detached like QEMU.
const (
	SwtpmStateDir = "tpm"        // swtpm's --tpmstate dir (0700)
	SwtpmSock     = "swtpm.sock" // swtpm's control socket; QEMU's chardev connects here
	SwtpmPidFile  = "swtpm.pid"
	SwtpmLog      = "swtpm.log"
)

// MaxNonce is the largest quote nonce (TPM2B_DATA holds at most one TPMT_HA digest).
const MaxNonce = 64

// swtpm is one detached swtpm process of a work directory.
type swtpm struct {
	dir    string
	pid    int
	exited <-chan struct{} // closed when a child we started has been reaped; nil when found again
}

// startSwtpm starts a fresh swtpm for the VM of dir: an empty state directory (the TPM of A
// is new; the TPM state of B arrives in the migration stream), control socket dir/swtpm.sock,
// no --terminate (it must outlive a SIGKILLed QEMU so tpm-quote can read its PCRs, see
// docs/tpm.md). It runs in its own session so it outlives this command; its pid goes to
// dir/swtpm.pid. Any swtpm still left in dir is stopped first.
func startSwtpm(dir string) (*swtpm, error) {
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		return nil, fmt.Errorf("--tpm needs swtpm: %v (install the swtpm package, scripts/setup.sh)", err)
	}
	stopSwtpm(dir)
	p := func(n string) string { return filepath.Join(dir, n) }
	state := p(SwtpmStateDir)
	if err := os.RemoveAll(state); err != nil {
		return nil, fmt.Errorf("clearing the old TPM state %s: %w", state, err)
	}
	if err := os.Mkdir(state, 0o700); err != nil {
		return nil, fmt.Errorf("TPM state directory: %w", err)
	}
	os.Remove(p(SwtpmSock))
	// swtpm's own log and its stdout/stderr share one file, both appending.
	os.Remove(p(SwtpmLog))
	pid, exited, err := vmm.StartDetached(SwtpmCommand(bin, state, p(SwtpmSock), p(SwtpmLog)), dir, p(SwtpmLog), p(SwtpmPidFile))
	if err != nil {
		return nil, err
	}
	s := &swtpm{dir: dir, pid: pid, exited: exited}
	// Ready when the control socket exists (QEMU's chardev fails at start otherwise).
	for end := time.Now().Add(10 * time.Second); ; {
		if st, err := os.Stat(p(SwtpmSock)); err == nil && st.Mode()&os.ModeSocket != 0 {
			return s, nil
		}
		if !s.alive() {
			b, _ := os.ReadFile(p(SwtpmLog))
			return nil, fmt.Errorf("swtpm exited at start: %s", strings.TrimSpace(string(b)))
		}
		if time.Now().After(end) {
			s.kill()
			return nil, fmt.Errorf("swtpm (pid %d) did not create %s within 10 s (see %s)", s.pid, p(SwtpmSock), p(SwtpmLog))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *swtpm) alive() bool { return vmm.Alive(s.pid, s.exited) }

// kill ends swtpm (SIGTERM, then SIGKILL, bounded) and removes its pid file and socket.
func (s *swtpm) kill() {
	vmm.Terminate(s.pid, s.alive)
	os.Remove(filepath.Join(s.dir, SwtpmPidFile))
	os.Remove(filepath.Join(s.dir, SwtpmSock))
}

// readSwtpmPid returns the pid in dir/swtpm.pid if that process is alive and is the swtpm of
// dir (its command line names dir's control socket), else 0.
func readSwtpmPid(dir string) int {
	return vmm.ReadPidFile(filepath.Join(dir, SwtpmPidFile), filepath.Join(dir, SwtpmSock))
}

// stopSwtpm ends the swtpm of dir, if any, and returns its pid (0 if none ran).
func stopSwtpm(dir string) int {
	pid := readSwtpmPid(dir)
	if pid == 0 {
		os.Remove(filepath.Join(dir, SwtpmPidFile))
		return 0
	}
	(&swtpm{dir: dir, pid: pid}).kill()
	return pid
}

// SwtpmCommand is the swtpm that backs a sevshim VM's TPM: TPM 2.0, state in stateDir, a
// control socket at sock (QEMU's chardev connects there) and no --terminate, so it outlives a
// SIGKILLed QEMU with its volatile state (the PCRs) for attest.DialSwtpm (docs/tpm.md). The
// caller decides its lifetime (hostctl detaches it; tests tie it to the test process).
func SwtpmCommand(bin, stateDir, sock, log string) *exec.Cmd {
	return exec.Command(bin, "socket", "--tpm2", "--tpmstate", "dir="+optEscape(stateDir),
		"--ctrl", "type=unixio,path="+optEscape(sock), "--log", "file="+optEscape(log))
}

// optEscape escapes a value for swtpm's option syntax, which is QEMU's (a comma is written
// twice).
func optEscape(s string) string { return strings.ReplaceAll(s, ",", ",,") }

// streamHasTPM reports whether a stream's device state carries QEMU's tpm-emulator section
// (its section idstr, length-prefixed as in a SECTION_FULL record).
func streamHasTPM(devices []byte) bool {
	return bytes.Contains(devices, []byte("\x0ctpm-emulator"))
}

// block returns the content of a RAM block of the received stream (pages from the PSP,
// zero pages filled), or nil if the block is not there.
func (rc *received) block(id string) []byte {
	bi := -1
	for i, b := range rc.sk.Blocks {
		if b.ID == id {
			bi = i
		}
	}
	if bi < 0 || rc.sk.Blocks[bi].Size > 64<<20 {
		return nil
	}
	out := make([]byte, rc.sk.Blocks[bi].Size)
	data := 0
	for _, e := range rc.sk.Entries {
		switch e.Kind {
		case migrate.EntryData:
			if int(e.Block) == bi && e.Offset()+migrate.PageSize <= uint64(len(out)) {
				copy(out[e.Offset():], rc.pages.get(data))
			}
			data++
		case migrate.EntryZero:
			if int(e.Block) == bi && e.Offset()+migrate.PageSize <= uint64(len(out)) {
				pg := out[e.Offset() : e.Offset()+migrate.PageSize]
				for i := range pg {
					pg[i] = e.Fill
				}
			}
		}
	}
	return out
}

// guestTPMPolicy reads the TPM mode and PCR of the policy in the shim image that the package
// carries in its flash (system.flash0): the PCR the shim extends on QEMU B.
func guestTPMPolicy(rc *received) (mode, pcr uint8, err error) {
	flash := rc.block("system.flash0")
	if flash == nil {
		return 0, 0, errors.New("no system.flash0 block")
	}
	_, pol, err := shimimage.ExtractPolicy(flash)
	if err != nil {
		return 0, 0, err
	}
	return pol.TPMMode, pol.TPMPCR, nil
}

// evidenceRequest checks what an evidence command (tpm-quote, attest) gets: a nonce of
// 1..MaxNonce bytes, an output file, and a receive work directory (made by receive, the
// command named in the error). It returns the directory's absolute path and its state.
func evidenceRequest(dir string, nonce []byte, out, receive string) (string, ReceiveState, error) {
	var rs ReceiveState
	if len(nonce) == 0 || len(nonce) > MaxNonce {
		return "", rs, fmt.Errorf("the nonce has %d bytes, want 1..%d", len(nonce), MaxNonce)
	}
	if out == "" {
		return "", rs, errors.New("an output file (--out) is required")
	}
	work, err := existingWorkDir(dir)
	if err != nil {
		return "", rs, err
	}
	if err := readJSON(filepath.Join(work, ReceiveJSON), &rs); err != nil {
		return "", rs, fmt.Errorf("%s is not a receive work directory (%v): run %s first", work, err, receive)
	}
	return work, rs, nil
}

// QuoteOptions are the inputs of `hostctl tpm-quote`.
type QuoteOptions struct {
	Work  string
	Nonce []byte
	Out   string
	PCR   int // -1: the PCR of the guest's shim policy (recorded by receive)
	Log   io.Writer
	// ShellTimeout bounds the wait for OVMF's shell before QEMU B is killed (default 240 s).
	ShellTimeout time.Duration
}

// QuoteResult is what tpm-quote reports.
type QuoteResult struct {
	Evidence  *attest.Evidence
	Out       string
	QEMUPid   int // QEMU B that was SIGKILLed (0 if it was already gone)
	SwtpmPid  int
	WaitedFor string // what was seen before the kill
}

// TPMQuote reads the TPM evidence of a received guest: it waits (bounded) until OVMF booted
// on QEMU B, SIGKILLs QEMU B — swtpm serves one client, and a normal quit would make QEMU send
// swtpm CMD_SHUTDOWN and lose the PCRs (docs/tpm.md) — takes over swtpm's data channel
// (attest.DialSwtpm), reads every bank of the PCR and a quote with the nonce (attest.Read),
// writes the evidence JSON atomically and stops swtpm. This ends the VM.
func TPMQuote(ctx context.Context, o QuoteOptions) (*QuoteResult, error) {
	work, rs, err := evidenceRequest(o.Work, o.Nonce, o.Out, "hostctl receive --tpm")
	if err != nil {
		return nil, err
	}
	if !rs.TPM {
		return nil, fmt.Errorf("no TPM in %s: its guest was received without --tpm; receive a package made with hostctl launch --tpm using hostctl receive --tpm", work)
	}
	if rs.VMM != "" && rs.VMM != vmm.DefaultBackend {
		// Its TPM is the VMM's (libvirt runs its own swtpm), not the one in the work directory.
		return nil, fmt.Errorf("the guest in %s runs on VMM backend %q, which owns its TPM: tpm-quote reads only hostctl's own swtpm (docs/hostctl.md: TPM evidence when libvirt owns swtpm)", work, rs.VMM)
	}
	pcr := o.PCR
	if pcr < 0 {
		if rs.TPMMode == 0 {
			return nil, fmt.Errorf("the shim policy of the guest in %s records nothing in a TPM (tpm: off, or its policy could not be read); pass --pcr N to read a PCR anyway", work)
		}
		pcr = int(rs.TPMPCR)
	}
	if pcr > 23 {
		return nil, fmt.Errorf("--pcr %d: want 0..23", pcr)
	}
	qpid, tpid := runningVM(work), readSwtpmPid(work)
	res := &QuoteResult{Out: o.Out, SwtpmPid: tpid}
	switch {
	case tpid == 0 && qpid == 0:
		return nil, fmt.Errorf("QEMU B and its swtpm in %s are both gone: the PCRs lived only in swtpm's memory and are lost; receive the package again with --tpm", work)
	case tpid == 0:
		return nil, fmt.Errorf("the swtpm of %s is gone (QEMU B pid %d still runs): its PCRs are lost; hostctl stop --work %s and receive again with --tpm", work, qpid, o.Work)
	}
	if qpid != 0 {
		if rs.Stage != ReceiveRunning {
			return nil, fmt.Errorf("the guest in %s is %q, not running after the shim's hand-off: nothing to attest", work, rs.Stage)
		}
		vm, err := attachVM(ctx, work)
		if err != nil {
			return nil, err
		}
		defer vm.Close()
		to := o.ShellTimeout
		if to == 0 {
			to = 240 * time.Second
		}
		// The PCR is extended before the hand-off; waiting for OVMF's shell makes sure no
		// firmware TPM command is in flight when QEMU dies.
		if _, _, _, err := waitLines(ctx, vm, vm.Serial(), to, reHandoff, reShell); err != nil {
			return nil, fmt.Errorf("waiting for OVMF to boot on QEMU B before reading its TPM: %w", err)
		}
		res.WaitedFor = "UEFI Interactive Shell"
		// Kill (SIGKILL), never quit: see above.
		if err := vm.Kill(); err != nil {
			return nil, fmt.Errorf("QEMU B (pid %d): %w", qpid, err)
		}
		res.QEMUPid = qpid
		if err := rs.move(ReceiveKilledTPM); err != nil {
			return nil, err
		}
		rs.Pid = 0
		writeJSON(filepath.Join(work, ReceiveJSON), &rs, 0o600)
		releaseWorkGuest(work, o.Log) // the VM is gone: so is its guest context
		logf(o.Log, "OVMF booted; QEMU B SIGKILLed; reading swtpm (pid %d)", tpid)
	} else {
		logf(o.Log, "QEMU B is already gone; reading the swtpm it left (pid %d)", tpid)
	}
	sock := filepath.Join(work, SwtpmSock)
	t, err := attest.DialSwtpmChecked(sock, 10*time.Second, func(c *net.UnixConn) error { return vmm.CheckPeer(c, sock, tpid) })
	if err != nil {
		return nil, fmt.Errorf("%w (swtpm pid %d still holds the PCRs: retry, or hostctl stop --work %s)", err, tpid, o.Work)
	}
	ev, err := attest.Read(t, uint(pcr), o.Nonce)
	t.Close()
	if err != nil {
		return nil, fmt.Errorf("reading PCR %d and the quote: %w (swtpm pid %d still holds the PCRs: retry, or hostctl stop --work %s)", pcr, err, tpid, o.Work)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(o.Out, append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("writing the evidence: %w", err)
	}
	stopSwtpm(work)
	if err := rs.move(ReceiveQuoted); err != nil {
		return nil, err
	}
	writeJSON(filepath.Join(work, ReceiveJSON), &rs, 0o600)
	res.Evidence = ev
	return res, nil
}
