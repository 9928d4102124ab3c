package qemu

import (
	"context"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// FuzzQMPReplies: whatever QEMU (or something pretending to be it) sends after the greeting,
// the client neither panics nor hangs: every command ends with a reply or an error once the
// input ends (or at its timeout).
func FuzzQMPReplies(f *testing.F) {
	f.Add([]byte(`{"return": {}}` + "\n" + `{"return": {"status": "running", "running": true}, "id": "sevshim-2"}`))
	f.Add([]byte(`{"return": {}, "id": "sevshim-1"}{"event": "STOP", "data": {}}{"error": {"class": "GenericError", "desc": "x"}, "id": "sevshim-2"}`))
	f.Add([]byte(`{"return": {}, "id": "sevshim-1"}{"return": [1,2,3], "id": 7}{"id": {"a": 1}, "return": null}`))
	f.Add([]byte(`{"return": {}, "id": "sevshim-1"}` + strings.Repeat(" ", 70000) + `{"return": "big", "id": "sevshim-2"}`))
	f.Add([]byte(`{"return": {}, "id": "sevshim-1"}{"return"`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Skip(err)
		}
		cf := os.NewFile(uintptr(fds[0]), "client")
		sf := os.NewFile(uintptr(fds[1]), "server")
		cc, err := net.FileConn(cf)
		cf.Close()
		if err != nil {
			t.Fatal(err)
		}
		sc, err := net.FileConn(sf)
		sf.Close()
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		// The fake QEMU: greeting, then the fuzz bytes, whatever the client asks; it drains
		// the client's requests so writes never block.
		go func() {
			sc.Write([]byte(`{"QMP": {"version": {}, "capabilities": []}}` + "\n"))
			sc.Write(data)
			// End of input: the client must see EOF and fail pending commands at once.
			sc.(*net.UnixConn).CloseWrite()
		}()
		go func() {
			buf := make([]byte, 4096)
			for {
				if _, err := sc.Read(buf); err != nil {
					return
				}
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		q, err := NewQMP(ctx, cc.(*net.UnixConn))
		if err != nil {
			return
		}
		defer q.Close()
		var st StatusInfo
		_ = q.ExecuteInto(ctx, "query-status", nil, &st)
		_, _ = q.Raw(ctx, []byte(`{"execute":"query-name","arguments":{}}`))
		_ = q.Events()
	})
}
