package libvirt

import (
	"regexp"
	"sort"
	"strconv"
	"testing"

	"github.com/sevshim/sevshim/pkg/host"
)

// reTimelineRow is one step row of `hostctl receive --timeline`: name, ms since start, +ms.
var reTimelineRow = regexp.MustCompile(`(?m)^  (\S.*?)\s+(\d+)\s+(\d+)$`)

// timelineMS parses receive --timeline output into step -> ms since the receive started.
func timelineMS(out string) map[string]float64 {
	m := map[string]float64{}
	for _, r := range reTimelineRow.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(r[2], 64)
		m[r[1]] = v
	}
	return m
}

// BenchmarkReceiveHandoff pairs, in each iteration, a receive on libvirt and one on
// hostctl's own QEMU of the same package and bundle (order alternating), and reports the
// medians of: receive start -> HANDOFF, and the steps libvirt changes (QEMU B started ->
// stream loaded: libvirt's restore, which starts QEMU itself; loaded -> resumed). Printed by
// make bench; never asserted.
func BenchmarkReceiveHandoff(b *testing.B) {
	w := getWorld(b)
	series := map[string][]float64{}
	for i := 0; i < b.N; i++ {
		for k := 0; k < 2; k++ {
			onLibvirt := (i+k)%2 == 0
			wb := w.cli.Track(b.TempDir() + "/B")
			args := []string{"receive", "--state", w.P, "--package", w.pkg, "--bios", w.v6, "--work", wb, "--timeline", "--stop"}
			tag := "qemu"
			if onLibvirt {
				args = append(args, "--libvirt", w.uri, "--name", "bench")
				tag = "libvirt"
			}
			r := w.cli.Run(b, nil, "hostctl", args...)
			w.cli.KillWork(wb)
			if r.Code != 0 {
				b.Fatalf("%s receive: %s", tag, r)
			}
			m := timelineMS(r.Stdout)
			for _, s := range []string{"HANDOFF", host.StepStarted, host.StepLoaded, host.StepResumed} {
				if _, ok := m[s]; !ok {
					b.Fatalf("%s receive --timeline has no %q step:\n%s", tag, s, r.Stdout)
				}
			}
			series[tag+"-handoff-ms"] = append(series[tag+"-handoff-ms"], m["HANDOFF"])
			series[tag+"-load-ms"] = append(series[tag+"-load-ms"], m[host.StepLoaded]-m[host.StepStarted])
			series[tag+"-resume-ms"] = append(series[tag+"-resume-ms"], m[host.StepResumed]-m[host.StepLoaded])
		}
	}
	for name, v := range series {
		b.Logf("%s: %v", name, v)
		sort.Float64s(v)
		b.ReportMetric(v[len(v)/2], name)
	}
}
