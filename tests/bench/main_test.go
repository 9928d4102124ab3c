package main

import (
	"testing"
	"time"

	"github.com/sevshim/sevshim/tests/bench/figures"
)

// TestTimelineMarks: receive --timeline's rows parse into times since the start; a missing
// step is an error.
func TestTimelineMarks(t *testing.T) {
	out := "received\ntimeline: a -> b\n  step      ms  +ms\n  resumed  120   20\n  HANDOFF  900  780\n\nrest 1 2\n"
	m, err := timelineMarks(out, "resumed", "HANDOFF")
	if err != nil || m["resumed"] != 120*time.Millisecond || m["HANDOFF"] != 900*time.Millisecond || len(m) != 2 {
		t.Fatalf("timelineMarks = %v, %v", m, err)
	}
	if _, err := timelineMarks(out, "OVMF"); err == nil {
		t.Fatal("a missing step accepted")
	}
}

// TestLibvirtSeries: the libvirt benchmark's logged series parse, the measured run's (the
// last) winning, and become paired rows.
func TestLibvirtSeries(t *testing.T) {
	out := `goos: linux
BenchmarkReceiveHandoff
    bench_test.go:61: libvirt-handoff-ms: [1000]
    bench_test.go:61: qemu-handoff-ms: [500]
    bench_test.go:61: libvirt-handoff-ms: [1200 1000]
    bench_test.go:61: qemu-handoff-ms: [600 400]
    bench_test.go:61: qemu-load-ms: [100 300]
BenchmarkReceiveHandoff-2   2   1 ns/op
`
	s := libvirtSeries(out)
	if len(s["libvirt-handoff-ms"]) != 2 || s["qemu-handoff-ms"][1] != 400 {
		t.Fatalf("series %v", s)
	}
	rep := figures.New(2, "test")
	if err := addLibvirt(s, rep, out); err != nil {
		t.Fatal(err)
	}
	rep.Finish()
	if r := rep.Row("libvirt.ratio.paired"); r.Min != 2 || r.Max != 2.5 {
		t.Fatalf("paired ratio %+v", r)
	}
	if r := rep.Row("libvirt.qemu.load"); r.Median != 0.2 {
		t.Fatalf("load %+v", r)
	}
	if err := addLibvirt(map[string][]float64{"libvirt-handoff-ms": {1}}, rep, out); err == nil {
		t.Fatal("unpaired samples accepted")
	}
}

// TestPacketRounds: one short round fills every packet row once, the ratios positive.
func TestPacketRounds(t *testing.T) {
	rep := figures.New(1, "test")
	if err := packetRounds(2, time.Millisecond, rep); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"packet.seal.ratio", "packet.open.ratio", "packet.seal.mbps", "packet.open.mbps",
		"packet.limit.mbps", "packet.limit.aes_ctr_mbps", "packet.limit.hmac_mbps"} {
		r := rep.Row(name)
		if len(r.Samples) != 2 || r.Samples[0] <= 0 || r.Samples[1] <= 0 {
			t.Errorf("%s: %v", name, r.Samples)
		}
	}
}
