package agent

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// UptimeFile is the kernel's uptime (proc(5): seconds since boot, then idle seconds).
const UptimeFile = "/proc/uptime"

// reUptime is the agent's uptime log line, whole: "sevshim-agent: kernel uptime 12.34 s".
var reUptime = regexp.MustCompile(`^sevshim-agent: kernel uptime ([0-9]+\.[0-9]+) s$`)

// LogUptime writes one log line with the kernel's uptime taken from proc, the content of
// UptimeFile. The host subtracts it from the line's arrival to place the kernel's start on
// its own clock (the guest's clock runs with the host's under QEMU).
func (a *Agent) LogUptime(proc string) {
	f := strings.Fields(proc)
	if len(f) == 0 {
		a.Logf("kernel uptime unreadable")
		return
	}
	if _, err := strconv.ParseFloat(f[0], 64); err != nil {
		a.Logf("kernel uptime unreadable")
		return
	}
	a.Logf("kernel uptime %s s", f[0])
}

// ParseUptime returns the uptime of an uptime log line (LogUptime) and whether line is one.
func ParseUptime(line string) (time.Duration, bool) {
	m := reUptime.FindStringSubmatch(line)
	if m == nil {
		return 0, false
	}
	s, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	return time.Duration(s * float64(time.Second)), true
}

// UptimeRE matches the uptime log line (whole line).
func UptimeRE() *regexp.Regexp { return reUptime }
