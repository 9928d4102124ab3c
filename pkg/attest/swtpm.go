package attest

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// swtpm control channel (man swtpm, "--ctrl"; swtpm_ioctl): every request is a big-endian
// u32 command code plus its payload, every reply starts with a big-endian u32 result (0 =
// success). CMD_SET_DATAFD carries no payload: the new data channel is a file descriptor
// passed with SCM_RIGHTS alongside the command code.
const (
	swtpmCmdSetDataFD = 16
)

// SwtpmData is a TPM command channel obtained from a running swtpm through its control
// socket: DialSwtpm hands swtpm one end of a fresh socketpair as its data channel and keeps
// the other. It implements transport.TPM (Send) and io.Closer.
//
// This only works while no other client holds swtpm: swtpm serves one control connection
// and one data channel at a time (docs/tpm.md). After the QEMU that used it was SIGKILLed,
// swtpm (started without --terminate) keeps running with its volatile state — the PCRs — and
// accepts a new control connection.
type SwtpmData struct {
	ctrl *net.UnixConn
	data *os.File
	// Timeout bounds each Send (default 30 s).
	Timeout time.Duration
}

// DialSwtpm connects to swtpm's control socket and installs a new data channel.
func DialSwtpm(ctrlPath string, timeout time.Duration) (*SwtpmData, error) {
	return DialSwtpmChecked(ctrlPath, timeout, nil)
}

// DialSwtpmChecked is DialSwtpm that runs check on the connected control socket before
// using it (hostctl checks the listener's SO_PEERCRED there); a check error ends the dial.
func DialSwtpmChecked(ctrlPath string, timeout time.Duration, check func(*net.UnixConn) error) (*SwtpmData, error) {
	deadline := time.Now().Add(timeout)
	var ctrl *net.UnixConn
	for {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: ctrlPath, Net: "unix"})
		if err == nil {
			ctrl = c
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("attest: connecting to the swtpm control socket %s: %w", ctrlPath, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if check != nil {
		if err := check(ctrl); err != nil {
			ctrl.Close()
			return nil, err
		}
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		ctrl.Close()
		return nil, fmt.Errorf("attest: socketpair: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "swtpm-data")
	theirs := fds[1]
	cmd := binary.BigEndian.AppendUint32(nil, swtpmCmdSetDataFD)
	ctrl.SetDeadline(deadline)
	_, _, err = ctrl.WriteMsgUnix(cmd, unix.UnixRights(theirs), nil)
	unix.Close(theirs) // swtpm has its own copy now (or the send failed)
	if err != nil {
		mine.Close()
		ctrl.Close()
		return nil, fmt.Errorf("attest: sending CMD_SET_DATAFD to %s: %w", ctrlPath, err)
	}
	var res [4]byte
	if _, err := io.ReadFull(ctrl, res[:]); err != nil {
		mine.Close()
		ctrl.Close()
		return nil, fmt.Errorf("attest: no reply to CMD_SET_DATAFD from %s (another client holds swtpm?): %w", ctrlPath, err)
	}
	if r := binary.BigEndian.Uint32(res[:]); r != 0 {
		mine.Close()
		ctrl.Close()
		return nil, fmt.Errorf("attest: swtpm refused CMD_SET_DATAFD: result %#x", r)
	}
	ctrl.SetDeadline(time.Time{})
	return &SwtpmData{ctrl: ctrl, data: mine, Timeout: 30 * time.Second}, nil
}

// Warning response codes after which TPM 2.0 Part 1 says to send the same command again
// (swtpm answers a Quote right after a CreatePrimary with TPM_RC_RETRY, seen here).
const (
	rcRetry   = 0x922
	rcYielded = 0x908
	rcTesting = 0x90A
)

// Send writes one TPM command and reads exactly one response (its size from the header).
// A RETRY/YIELDED/TESTING answer is retried (bounded), as the TPM specification asks.
func (s *SwtpmData) Send(cmd []byte) ([]byte, error) {
	to := s.Timeout
	if to == 0 {
		to = 30 * time.Second
	}
	for attempt := 0; ; attempt++ {
		s.data.SetDeadline(time.Now().Add(to))
		if _, err := s.data.Write(cmd); err != nil {
			return nil, fmt.Errorf("attest: writing to swtpm: %w", err)
		}
		rsp, err := ReadResponse(s.data)
		if err != nil {
			return nil, err
		}
		rc := binary.BigEndian.Uint32(rsp[6:])
		if (rc == rcRetry || rc == rcYielded || rc == rcTesting) && attempt < 20 {
			time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond)
			continue
		}
		return rsp, nil
	}
}

// maxResponse bounds a response (swtpm's default buffer is 4 KiB).
const maxResponse = 64 << 10

// ReadResponse reads one TPM 2.0 response: the 10-byte header, then size-10 more bytes.
func ReadResponse(r io.Reader) ([]byte, error) {
	hdr := make([]byte, 10)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("attest: reading a TPM response header: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[2:])
	if n < 10 || n > maxResponse {
		return nil, fmt.Errorf("attest: TPM response size %d out of range", n)
	}
	b := make([]byte, n)
	copy(b, hdr)
	if _, err := io.ReadFull(r, b[10:]); err != nil {
		return nil, fmt.Errorf("attest: reading a %d-byte TPM response: %w", n, err)
	}
	return b, nil
}

// Close closes the data channel and the control connection (swtpm keeps running).
func (s *SwtpmData) Close() error {
	err1 := s.data.Close()
	err2 := s.ctrl.Close()
	if err1 != nil {
		return err1
	}
	return err2
}
