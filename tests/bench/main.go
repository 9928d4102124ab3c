// Command shimbench is `make bench`: it measures the sevshim chain on real QEMU (TCG) with
// Debian's OVMF and prints every figure of the performance table (tests/bench/figures) as
// min / median / max over the runs, with its unit and goal; it asserts nothing.
//
// Each run, in order (paired sides alternate which goes first, so a drifting host load hits
// both alike):
//   - A: the shim from reset to SEVSHIM READY, its state saved to a file (tests/harness);
//   - boot: stock OVMF to BdsDxe and B resumed from that state through the shim to BdsDxe,
//     with the shim's steps from its timestamped debugcon lines;
//   - migrate: hostctl export + receive of a 256 MiB guest (48 MiB dirty) and plain QEMU
//     migrate-to-file + -incoming of the same guest, both to HANDOFF;
//   - packet: SEV packet seal and open of 4 KiB against Go's AES-128-CTR + HMAC-SHA-256 on
//     the same buffers, time-bounded rounds alternating;
//   - guest (the first -guest-runs runs): B from the READY state with the guest kernel to the
//     agent's READY, split at HANDOFF, the kernel's start and the agent's first line.
//
// After the runs, the libvirt benchmark (tests/libvirt) pairs receives through libvirt and
// hostctl's own QEMU. Times are host wall clock, taken when a console line arrived through a
// pipe. -json FILE writes every figure with its samples (make bench BENCH_JSON=FILE); go run
// ./tests/bench/readme -in FILE regenerates README.md's table from it.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/sevshim/sevshim/tests/bench/figures"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

var (
	flagRuns        = flag.Int("n", 5, "runs (each: A, boot pair, migrate pair, packet rounds)")
	flagGuestRuns   = flag.Int("guest-runs", 3, "runs that also boot the Linux guest (at most -n)")
	flagLibvirtRuns = flag.Int("libvirt-runs", 3, "paired libvirt/own-QEMU receives (0: skip)")
	flagOnly        = flag.String("only", "", "comma-separated parts to run (boot,migrate,packet,guest,libvirt,size; default all)")
	flagJSON        = flag.String("json", "", "also write every figure with its samples to this file")
	flagCompare     = flag.String("compare", "", "compare the medians of this JSON file with those of -json's (no measuring)")
	flagShim        = flag.String("shim", "", "shim template (default: build/shim/shim.fd or $SEVSHIM_SHIM_FD)")
	flagTimeout     = flag.Duration("timeout", 5*time.Minute, "bound for each QEMU run")
	flagKeep        = flag.Bool("keep", false, "keep the work directory (logs, state files)")
	flagSVG         = flag.String("svg", "", "draw export + receive against plain migration step by step into this SVG file")
)

func main() {
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: shimbench [-n RUNS] [-json FILE] [-only PARTS]\n\n"+
			"Measures the sevshim chain on QEMU TCG and prints the performance table.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	var err error
	if *flagCompare != "" {
		err = compare(*flagCompare, *flagJSON)
	} else {
		err = run()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "shimbench:", err)
		os.Exit(1)
	}
}

func compare(a, b string) error {
	var reps [2]*figures.Report
	for i, p := range []string{a, b} {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		reps[i], err = figures.ReadJSON(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	fmt.Printf("%-34s %10s %10s %7s\n", "median of", filepath.Base(a), filepath.Base(b), "diff")
	figures.Compare(os.Stdout, reps[0], reps[1])
	return nil
}

// want reports whether part runs (-only).
func want(part string) bool {
	if *flagOnly == "" {
		return true
	}
	for _, p := range strings.Split(*flagOnly, ",") {
		if strings.TrimSpace(p) == part {
			return true
		}
	}
	return false
}

func run() error {
	if *flagRuns < 1 {
		return fmt.Errorf("-n must be at least 1")
	}
	began := time.Now()
	machine := fmt.Sprintf("QEMU TCG, %d host CPUs, %s/%s, %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	rep := figures.New(*flagRuns, machine)
	dir, err := os.MkdirTemp("", "shimbench-")
	if err != nil {
		return err
	}
	if *flagKeep {
		fmt.Fprintln(os.Stderr, "work directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	var chain *setup
	if want("boot") || want("guest") {
		if chain, err = prepare(dir, *flagShim); err != nil {
			return err
		}
	}
	var mig *migration
	if want("migrate") {
		if mig, err = newMigration(filepath.Join(dir, "migrate")); err != nil {
			return err
		}
		defer mig.close()
	}
	var gst *guestFiles
	if want("guest") {
		if gst, err = findGuest(); err != nil {
			return err
		}
	}
	for i := 0; i < *flagRuns; i++ {
		fmt.Fprintf(os.Stderr, "run %d/%d:", i+1, *flagRuns)
		// paired sides alternate which goes first
		first := i%2 == 0
		var state string
		if chain != nil {
			fmt.Fprint(os.Stderr, " A")
			if state, err = runA(chain, i, rep); err != nil {
				return err
			}
		}
		if want("boot") {
			fmt.Fprint(os.Stderr, ", boot")
			if err := bootPair(chain, state, i, first, rep); err != nil {
				return err
			}
		}
		if mig != nil {
			fmt.Fprint(os.Stderr, ", migrate")
			if err := mig.pair(i, first, rep); err != nil {
				return err
			}
		}
		if want("packet") {
			fmt.Fprint(os.Stderr, ", packet")
			if err := packetRounds(3, time.Second, rep); err != nil {
				return err
			}
		}
		if gst != nil && i < *flagGuestRuns {
			fmt.Fprint(os.Stderr, ", guest")
			if err := guestBoot(chain, gst, state, i, rep); err != nil {
				return err
			}
		}
		fmt.Fprintln(os.Stderr)
	}
	if want("libvirt") && *flagLibvirtRuns > 0 {
		fmt.Fprintln(os.Stderr, "libvirt: go test -bench ReceiveHandoff ./tests/libvirt/")
		if err := libvirtPairs(*flagLibvirtRuns, rep); err != nil {
			return err
		}
	}
	if want("size") {
		if err := sizes(*flagShim, gst, rep); err != nil {
			fmt.Fprintln(os.Stderr, "shimbench: sizes:", err)
		}
	}
	if mig != nil && *flagSVG != "" {
		if err := mig.drawSVG(*flagSVG); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "wrote", *flagSVG)
	}
	rep.Seconds = time.Since(began).Seconds()
	rep.Finish()
	if err := rep.WriteText(os.Stdout); err != nil {
		return err
	}
	if *flagJSON != "" {
		f, err := os.Create(*flagJSON)
		if err != nil {
			return err
		}
		if err := rep.WriteJSON(f); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	return nil
}

// template is the shim template: -shim or the repo's build.
func template(flagged string) (string, error) {
	if flagged != "" {
		return filepath.Abs(flagged)
	}
	return repo.ShimTemplate()
}

// settle writes back every dirty page before a timed path starts, so that neither path of a
// pair pays for the other's writes: on ext4 (data=ordered) the export's fsync would otherwise
// also wait for the previous path's hundreds of MiB of state files.
func settle() { syscall.Sync() }
