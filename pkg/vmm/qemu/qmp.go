package qemu

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Why our own QMP client instead of go-qemu's qmp package (pinned in go.mod):
//   - go-qemu reads replies with a bufio.Scanner limited to 64 KiB tokens; one large reply
//     (query-qmp-schema, big SEV blobs) kills the monitor for good.
//   - its events channel is unbuffered and must be drained continuously, or command replies
//     block behind it; tests that never look at events would then hang.
//   - it matches replies by order, has no per-command timeout, loses the QMP error class, and
//     its typed layer predates the SEV commands hostctl needs.
// The client below is a json.Decoder over the socket (no size limit), uses QMP's "id" field
// to match replies, keeps events in a bounded buffer that never blocks the reader, bounds
// every command with a context deadline (DefaultTimeout when none is set), and can send raw
// JSON and pass a file descriptor (SCM_RIGHTS, for getfd).

// DefaultTimeout bounds a QMP command whose context has no deadline.
const DefaultTimeout = 30 * time.Second

// maxEvents bounds the number of events kept for WaitEvent; the oldest are dropped first.
const maxEvents = 4096

// Error is an error reply from QEMU.
type Error struct {
	Command string
	Class   string
	Desc    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("qmp %s: %s: %s", e.Command, e.Class, e.Desc)
}

// Event is an asynchronous QMP event with the host time it was received.
type Event struct {
	Name     string
	Data     json.RawMessage
	Received time.Time
}

// QMP is a connected QMP client. All methods are safe for concurrent use.
type QMP struct {
	conn *net.UnixConn

	// Greeting is QEMU's banner ({"QMP": {...}}), raw.
	Greeting json.RawMessage

	wmu    sync.Mutex // serialises writes
	mu     sync.Mutex
	nextID uint64
	wait   map[string]chan reply
	events []Event
	evSig  chan struct{} // closed and replaced whenever an event arrives
	closed chan struct{}
	rerr   error // why the reader stopped
}

type reply struct {
	Return json.RawMessage
	Err    *Error
}

type message struct {
	QMP    json.RawMessage `json:"QMP"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	Return json.RawMessage `json:"return"`
	Error  *struct {
		Class string `json:"class"`
		Desc  string `json:"desc"`
	} `json:"error"`
	ID json.RawMessage `json:"id"`
}

// DialQMP connects to a QMP unix socket, reads the greeting and negotiates capabilities.
// It retries the connection until ctx is done, because QEMU creates the socket shortly after
// it starts.
func DialQMP(ctx context.Context, path string) (*QMP, error) {
	return DialQMPChecked(ctx, path, nil)
}

// DialQMPChecked is DialQMP that runs check on the connected socket before reading a byte
// (hostctl checks the listener's SO_PEERCRED there); a check error ends the dial.
func DialQMPChecked(ctx context.Context, path string, check func(*net.UnixConn) error) (*QMP, error) {
	var conn net.Conn
	for {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err == nil {
			conn = c
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("qmp: connect %s: %w (last error: %v)", path, ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	uc := conn.(*net.UnixConn)
	if check != nil {
		if err := check(uc); err != nil {
			uc.Close()
			return nil, err
		}
	}
	return NewQMP(ctx, uc)
}

// NewQMP takes over an already connected QMP socket (for example one end of a socketpair).
func NewQMP(ctx context.Context, conn *net.UnixConn) (*QMP, error) {
	q := &QMP{
		conn:   conn,
		wait:   make(map[string]chan reply),
		evSig:  make(chan struct{}),
		closed: make(chan struct{}),
	}
	dec := json.NewDecoder(conn)
	// The greeting comes first; read it synchronously with a deadline.
	if dl, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(dl)
	} else {
		conn.SetReadDeadline(time.Now().Add(DefaultTimeout))
	}
	var g message
	if err := dec.Decode(&g); err != nil {
		conn.Close()
		return nil, fmt.Errorf("qmp: reading greeting: %w", err)
	}
	if g.QMP == nil {
		conn.Close()
		return nil, fmt.Errorf("qmp: unexpected greeting (no \"QMP\" member)")
	}
	q.Greeting = g.QMP
	conn.SetReadDeadline(time.Time{})
	go q.reader(dec)
	if _, err := q.Execute(ctx, "qmp_capabilities", nil); err != nil {
		q.Close()
		return nil, err
	}
	return q, nil
}

func (q *QMP) reader(dec *json.Decoder) {
	var err error
	for {
		var m message
		if err = dec.Decode(&m); err != nil {
			break
		}
		now := time.Now()
		switch {
		case m.Event != "":
			q.mu.Lock()
			if len(q.events) >= maxEvents {
				q.events = append(q.events[:0], q.events[1:]...)
			}
			q.events = append(q.events, Event{Name: m.Event, Data: m.Data, Received: now})
			close(q.evSig)
			q.evSig = make(chan struct{})
			q.mu.Unlock()
		case m.Return != nil || m.Error != nil:
			var id string
			if len(m.ID) > 0 {
				if err := json.Unmarshal(m.ID, &id); err != nil {
					id = string(m.ID)
				}
			}
			r := reply{Return: m.Return}
			if m.Error != nil {
				r.Err = &Error{Class: m.Error.Class, Desc: m.Error.Desc}
			}
			q.mu.Lock()
			ch := q.wait[id]
			delete(q.wait, id)
			q.mu.Unlock()
			if ch != nil {
				ch <- r // buffered, never blocks
			}
		}
	}
	if errors.Is(err, io.EOF) {
		err = errors.New("qmp: connection closed by QEMU")
	}
	q.mu.Lock()
	q.rerr = err
	q.mu.Unlock()
	close(q.closed)
}

// Close closes the connection. Pending commands fail.
func (q *QMP) Close() error {
	err := q.conn.Close()
	<-q.closed
	return err
}

// Done is closed when the connection is gone (QEMU exited or Close was called).
func (q *QMP) Done() <-chan struct{} { return q.closed }

func (q *QMP) readerErr() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.rerr == nil {
		return errors.New("qmp: connection closed")
	}
	return q.rerr
}

// Execute runs command with args (any JSON-marshalable value, or an untyped nil for none) and
// returns the raw "return" member. QMP errors are returned as *Error.
func (q *QMP) Execute(ctx context.Context, command string, args any) (json.RawMessage, error) {
	return q.execute(ctx, command, args, nil)
}

// ExecuteInto is Execute that unmarshals the reply into result.
func (q *QMP) ExecuteInto(ctx context.Context, command string, args any, result any) error {
	raw, err := q.Execute(ctx, command, args)
	if err != nil {
		return err
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(raw, result); err != nil {
		return fmt.Errorf("qmp %s: decoding reply %s: %w", command, truncate(raw, 200), err)
	}
	return nil
}

// ExecuteWithFile runs command while passing the descriptor fd to QEMU with SCM_RIGHTS (as
// "getfd" and "add-fd" expect). The caller keeps (and later closes) its own copy of fd.
func (q *QMP) ExecuteWithFile(ctx context.Context, command string, args any, fd int) (json.RawMessage, error) {
	return q.execute(ctx, command, args, syscall.UnixRights(fd))
}

// Raw sends one raw JSON command object (it must contain "execute"; an "id" member is added
// or replaced) and returns the raw "return" member. Use it for commands without a typed
// helper (the SEV ones).
func (q *QMP) Raw(ctx context.Context, cmd []byte) (json.RawMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(cmd, &obj); err != nil {
		return nil, fmt.Errorf("qmp: raw command is not a JSON object: %w", err)
	}
	var name string
	if err := json.Unmarshal(obj["execute"], &name); err != nil || name == "" {
		return nil, errors.New(`qmp: raw command has no "execute" string`)
	}
	if a, ok := obj["arguments"]; ok {
		return q.execute(ctx, name, a, nil)
	}
	return q.execute(ctx, name, nil, nil)
}

func (q *QMP) execute(ctx context.Context, command string, args any, oob []byte) (json.RawMessage, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	q.mu.Lock()
	q.nextID++
	id := "sevshim-" + strconv.FormatUint(q.nextID, 10)
	ch := make(chan reply, 1)
	q.wait[id] = ch
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		delete(q.wait, id)
		q.mu.Unlock()
	}()

	req := map[string]any{"execute": command, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	buf, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("qmp %s: encoding arguments: %w", command, err)
	}
	buf = append(buf, '\n')

	select {
	case <-q.closed:
		return nil, fmt.Errorf("qmp %s: %w", command, q.readerErr())
	default:
	}
	q.wmu.Lock()
	if dl, ok := ctx.Deadline(); ok {
		q.conn.SetWriteDeadline(dl)
	}
	if oob != nil {
		_, _, err = q.conn.WriteMsgUnix(buf, oob, nil)
	} else {
		_, err = q.conn.Write(buf)
	}
	q.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("qmp %s: write: %w", command, err)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			r.Err.Command = command
			return nil, r.Err
		}
		return r.Return, nil
	case <-q.closed:
		return nil, fmt.Errorf("qmp %s: %w", command, q.readerErr())
	case <-ctx.Done():
		return nil, fmt.Errorf("qmp %s: no reply: %w", command, ctx.Err())
	}
}

// Events returns a copy of the events received so far (at most the last 4096).
func (q *QMP) Events() []Event {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]Event(nil), q.events...)
}

// WaitEvent waits for an event called name received at or after since and returns it.
func (q *QMP) WaitEvent(ctx context.Context, name string, since time.Time) (Event, error) {
	for {
		q.mu.Lock()
		for _, e := range q.events {
			if e.Name == name && !e.Received.Before(since) {
				q.mu.Unlock()
				return e, nil
			}
		}
		sig := q.evSig
		q.mu.Unlock()
		select {
		case <-sig:
		case <-q.closed:
			return Event{}, fmt.Errorf("qmp: waiting for event %s: %w", name, q.readerErr())
		case <-ctx.Done():
			return Event{}, fmt.Errorf("qmp: waiting for event %s: %w", name, ctx.Err())
		}
	}
}

func truncate(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}
