package agent

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestUptimeLine: the uptime log line is one whole line that ParseUptime reads back;
// garbage from /proc gives a line that is not one.
func TestUptimeLine(t *testing.T) {
	var log bytes.Buffer
	a := &Agent{Log: &log}
	a.LogUptime("12.34 20.01\n")
	line := strings.TrimSuffix(log.String(), "\n")
	if strings.Contains(line, "\n") {
		t.Fatalf("more than one line: %q", log.String())
	}
	d, ok := ParseUptime(line)
	if !ok || d != 12340*time.Millisecond {
		t.Fatalf("ParseUptime(%q) = %v, %v", line, d, ok)
	}
	if !UptimeRE().MatchString(line) {
		t.Fatalf("UptimeRE does not match %q", line)
	}
	for _, bad := range []string{"", "x y", "-1.0 2"} {
		log.Reset()
		a.LogUptime(bad)
		if _, ok := ParseUptime(strings.TrimSuffix(log.String(), "\n")); ok {
			t.Errorf("LogUptime(%q) wrote an uptime line: %q", bad, log.String())
		}
	}
	if _, ok := ParseUptime("x sevshim-agent: kernel uptime 1.00 s"); ok {
		t.Error("a line with a prefix parses")
	}
}
