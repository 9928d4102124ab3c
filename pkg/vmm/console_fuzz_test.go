package vmm

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// FuzzConsoleFeed: the line splitter never loses or invents bytes, whatever the chunking.
func FuzzConsoleFeed(f *testing.F) {
	f.Add([]byte("SEVSHIM READY\r\nSEVSHIM WA"), uint8(3))
	f.Add([]byte("\n\n\r\r\nShell> "), uint8(1))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		c := NewConsole("fuzz", nil)
		n := int(step)%17 + 1
		now := time.Now()
		for i := 0; i < len(data); i += n {
			j := i + n
			if j > len(data) {
				j = len(data)
			}
			c.feed(data[i:j], now)
		}
		complete := c.CompleteLines()
		if got, want := len(complete), bytes.Count(data, []byte("\n")); got != want {
			t.Fatalf("%d complete lines for %d newlines", got, want)
		}
		var rebuilt strings.Builder
		parts := bytes.Split(data, []byte("\n"))
		for i, l := range complete {
			if strings.Contains(l.Text, "\n") {
				t.Fatalf("line %d contains a newline", i)
			}
			want := strings.TrimSuffix(string(parts[i]), "\r")
			if l.Text != want {
				t.Fatalf("line %d = %q, want %q", i, l.Text, want)
			}
			rebuilt.WriteString(l.Text)
		}
		all := c.Lines()
		last := parts[len(parts)-1]
		if len(last) > 0 {
			if len(all) != len(complete)+1 || all[len(all)-1].Text != strings.TrimSuffix(string(last), "\r") {
				t.Fatalf("unfinished line missing or wrong: %+v", all)
			}
		} else if len(all) != len(complete) {
			t.Fatalf("phantom unfinished line")
		}
	})
}
