package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sevshim/sevshim/tests/bench/figures"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

// reSeries is a sample line BenchmarkReceiveHandoff (tests/libvirt) logs: "NAME-ms: [a b c]".
var reSeries = regexp.MustCompile(`(?m)^\s+\S+\.go:\d+: ((?:libvirt|qemu)-(?:handoff|load|resume)-ms): \[([0-9. ]*)\]$`)

// libvirtSeries returns the last logged samples of each series in go test's output (a
// benchmark runs once before its measured run: the later log is that run's).
func libvirtSeries(out string) map[string][]float64 {
	s := map[string][]float64{}
	for _, m := range reSeries.FindAllStringSubmatch(out, -1) {
		var v []float64
		for _, f := range strings.Fields(m[2]) {
			x, err := strconv.ParseFloat(f, 64)
			if err == nil {
				v = append(v, x)
			}
		}
		s[m[1]] = v
	}
	return s
}

// libvirtPairs runs tests/libvirt's BenchmarkReceiveHandoff (n pairs of receives, libvirt
// and own QEMU) and records its samples.
func libvirtPairs(n int, rep *figures.Report) error {
	root, err := repo.Root()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^BenchmarkReceiveHandoff$", "-benchtime",
		strconv.Itoa(n)+"x", "-timeout", "25m", "-v", "./tests/libvirt/")
	cmd.Dir = root
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("libvirt benchmark: %v\n%s", err, out.String())
	}
	return addLibvirt(libvirtSeries(out.String()), rep, out.String())
}

// addLibvirt records the series as rows, the ratio paired per iteration.
func addLibvirt(s map[string][]float64, rep *figures.Report, out string) error {
	lv, q := s["libvirt-handoff-ms"], s["qemu-handoff-ms"]
	if len(lv) == 0 || len(lv) != len(q) {
		return fmt.Errorf("libvirt benchmark: no paired samples in its output:\n%s", out)
	}
	for k := range lv {
		rep.Add("libvirt.ratio.paired", lv[k]/q[k])
	}
	for series, row := range map[string]string{
		"libvirt-handoff-ms": "libvirt.libvirt.receive_to_handoff", "qemu-handoff-ms": "libvirt.qemu.receive_to_handoff",
		"libvirt-load-ms": "libvirt.libvirt.load", "qemu-load-ms": "libvirt.qemu.load",
		"libvirt-resume-ms": "libvirt.libvirt.resume", "qemu-resume-ms": "libvirt.qemu.resume",
	} {
		for _, v := range s[series] {
			rep.Add(row, v/1000)
		}
	}
	return nil
}
