package qemu

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// ctl is the QMP-level control of one QEMU, the same for both lifetimes (the attached VM
// and the detached one of a work directory): run state, one migration-out and one
// migration-in implementation, guest-memory reads and the halt check.
type ctl struct {
	qmp     *QMP
	dir     string // where the migration socket and memory dumps are made
	pid     int    // the QEMU process (the peer the migration socket must have)
	gone    func() bool
	summary func() string // QEMU's own messages, for errors
}

// migrateBandwidth lifts QEMU's migration bandwidth limit (128 MiB/s by default in 7.2).
const migrateBandwidth = int64(32) << 30

func (c *ctl) exec(ctx context.Context, cmd string, args any) error {
	if c.qmp == nil {
		return errNotRunning
	}
	_, err := c.qmp.Execute(ctx, cmd, args)
	return err
}

func (c *ctl) status(ctx context.Context) (string, error) {
	if c.qmp == nil {
		return "", errNotRunning
	}
	var st StatusInfo
	if err := c.qmp.ExecuteInto(ctx, "query-status", nil, &st); err != nil {
		return "", err
	}
	return st.Status, nil
}

func (c *ctl) queryMigrate(ctx context.Context) (MigrationInfo, error) {
	var mi MigrationInfo
	if c.qmp == nil {
		return mi, errNotRunning
	}
	err := c.qmp.ExecuteInto(ctx, "query-migrate", nil, &mi)
	return mi, err
}

// migrateURI starts a migration of the (stopped) guest to uri and polls query-migrate until
// it completed, bounded by ctx.
func (c *ctl) migrateURI(ctx context.Context, uri string) (MigrationInfo, error) {
	if err := c.exec(ctx, "migrate-set-parameters", map[string]any{"max-bandwidth": migrateBandwidth}); err != nil {
		return MigrationInfo{}, err
	}
	if err := c.exec(ctx, "migrate", map[string]any{"uri": uri}); err != nil {
		return MigrationInfo{}, err
	}
	return c.waitMigrated(ctx, 0)
}

// waitMigrated polls query-migrate until the migration completed (or failed), bounded by ctx
// and, if bound > 0, by bound.
func (c *ctl) waitMigrated(ctx context.Context, bound time.Duration) (MigrationInfo, error) {
	if bound > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, bound)
		defer cancel()
	}
	for {
		mi, err := c.queryMigrate(ctx)
		if err != nil {
			return mi, err
		}
		switch mi.Status {
		case "completed":
			return mi, nil
		case "failed", "cancelled":
			return mi, fmt.Errorf("qemu: migration %s: %s; %s", mi.Status, mi.ErrorDesc, c.summary())
		}
		select {
		case <-ctx.Done():
			return mi, fmt.Errorf("qemu: migration still %q: %w", mi.Status, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// migrateOut migrates the whole state of the stopped guest into w: QEMU writes into a pipe
// (QMP getfd, then migrate fd:) and this process copies the read end into w, so the stream
// goes nowhere else (no plaintext RAM on the disk unless w is a file) and its end is exactly
// known. An error from w closes the pipe: QEMU gets EPIPE and fails the migration, the guest
// stays stopped. It returns QEMU's migration info and the bytes written.
func (c *ctl) migrateOut(ctx context.Context, w io.Writer) (MigrationInfo, int64, error) {
	if err := c.exec(ctx, "migrate-set-parameters", map[string]any{"max-bandwidth": migrateBandwidth}); err != nil {
		return MigrationInfo{}, 0, err
	}
	r, pw, err := os.Pipe()
	if err != nil {
		return MigrationInfo{}, 0, err
	}
	defer r.Close()
	const fdName = "sevshim-migrate"
	_, err = c.qmp.ExecuteWithFile(ctx, "getfd", map[string]any{"fdname": fdName}, int(pw.Fd()))
	pw.Close()
	if err != nil {
		return MigrationInfo{}, 0, fmt.Errorf("passing the migration pipe to QEMU: %w", err)
	}
	if err := c.exec(ctx, "migrate", map[string]any{"uri": "fd:" + fdName}); err != nil {
		return MigrationInfo{}, 0, err
	}
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := io.Copy(w, r)
		if err != nil {
			r.Close() // QEMU gets EPIPE and fails the migration
		}
		done <- result{n, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-ctx.Done():
		r.Close()
		<-done
		return MigrationInfo{}, 0, ctx.Err()
	case <-time.After(10 * time.Minute):
		r.Close()
		<-done
		return MigrationInfo{}, 0, errors.New("the migration stream did not end within 10 minutes")
	}
	if res.err != nil {
		return MigrationInfo{}, res.n, fmt.Errorf("the migration stream: %w", res.err)
	}
	mi, err := c.waitMigrated(ctx, 60*time.Second)
	return mi, res.n, err
}

// cancelMigration ends a migration still active from an interrupted migrateOut (it fails
// on a broken pipe soon anyway) and waits until none is active, at most 30 s.
func (c *ctl) cancelMigration(ctx context.Context) error {
	end := time.Now().Add(30 * time.Second)
	cancelled := false
	for {
		mi, err := c.queryMigrate(ctx)
		if err != nil {
			return err
		}
		switch mi.Status {
		case "", "none", "completed", "failed", "cancelled":
			return nil
		}
		if !cancelled {
			c.exec(ctx, "migrate_cancel", nil)
			cancelled = true
		}
		if time.Now().After(end) {
			return fmt.Errorf("an earlier migration of QEMU is still %q after 30 s", mi.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// migrateIn loads a state from r into a QEMU started with -incoming defer: QEMU listens on
// a unix socket in its directory (migrate-incoming), this process connects (checking that
// the listener is this QEMU: the stream may be the guest's plaintext RAM), copies r into it
// and waits (at most timeout) until the state is loaded. It returns the status then.
func (c *ctl) migrateIn(ctx context.Context, r io.Reader, timeout time.Duration) (string, error) {
	sock := filepath.Join(c.dir, MigrateSock)
	os.Remove(sock)
	if err := c.exec(ctx, "migrate-incoming", map[string]any{"uri": "unix:" + sock}); err != nil {
		return "", err
	}
	var conn *net.UnixConn
	var err error
	for end := time.Now().Add(10 * time.Second); ; {
		if conn, err = vmm.DialPeer(ctx, sock, c.pid, 5*time.Second); err == nil {
			break
		}
		var perr *vmm.PeerError
		if errors.As(err, &perr) {
			return "", err
		}
		if time.Now().After(end) {
			return "", fmt.Errorf("QEMU does not listen on %s: %v", sock, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Minute))
	_, werr := io.Copy(conn, r)
	conn.Close()
	if werr != nil {
		return "", fmt.Errorf("feeding QEMU: %w; %s", werr, c.summary())
	}
	return c.waitLoaded(ctx, timeout)
}

// waitLoaded waits (bounded by ctx and timeout) until QEMU has loaded an incoming migration,
// i.e. its status is no longer "inmigrate", and returns that status ("paused" for a stopped
// source). If QEMU exits instead (a stream it cannot load), the error carries QEMU's own
// message.
func (c *ctl) waitLoaded(ctx context.Context, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	exited := func() error {
		return fmt.Errorf("qemu exited while loading the incoming state: %s", c.summary())
	}
	for {
		st, err := c.status(ctx)
		if err != nil {
			// QEMU may be exiting; give it a moment so the message is QEMU's.
			for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
				if c.gone() {
					return "", exited()
				}
			}
			return "", err
		}
		if st != "inmigrate" {
			return st, nil
		}
		if c.gone() {
			return "", exited()
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("qemu: incoming migration not finished: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (c *ctl) pmemsave(ctx context.Context, addr, size uint64, file string) error {
	return c.exec(ctx, "pmemsave", map[string]any{"val": addr, "size": size, "filename": file})
}

// readPhys reads guest-physical memory through QMP pmemsave into a file of the VM's
// directory (QEMU opens the path itself), which is removed again.
func (c *ctl) readPhys(ctx context.Context, addr uint64, n int) ([]byte, error) {
	f := filepath.Join(c.dir, ".memory-read")
	os.Remove(f)
	defer os.Remove(f)
	if err := c.pmemsave(ctx, addr, uint64(n), f); err != nil {
		return nil, fmt.Errorf("reading guest memory at 0x%x: %w", addr, err)
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return nil, err
	}
	if len(b) != n {
		return nil, fmt.Errorf("pmemsave returned %d bytes, want %d", len(b), n)
	}
	return b, nil
}

// reHalted matches the halt flag in the register dump of HMP `info registers` (QEMU's x86
// CPU state dump prints "HLT=1" while the vCPU is halted).
var reHalted = regexp.MustCompile(`(^|\s)HLT=1(\s|$)`)

// waitHalted waits (at most timeout) until the vCPU is halted. The shim prints READY right
// before its wait loop (`cli; hlt` until the wake-up NMI, docs/shim.md); a guest saved
// while halted there resumes into the hlt, so the wake-up NMI finds it waiting.
func (c *ctl) waitHalted(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var out string
		if c.qmp == nil {
			return errNotRunning
		}
		if err := c.qmp.ExecuteInto(ctx, "human-monitor-command", map[string]any{"command-line": "info registers"}, &out); err != nil {
			return fmt.Errorf("reading the vCPU state: %w", err)
		}
		if reHalted.MatchString(out) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the vCPU did not halt: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
