// Command mkgolden writes testdata/golden: keys, BIOS test images, policy blocks, manifests,
// synthetic shim images and cases.json describing each file and its expected outcome. Output is
// fully deterministic (keys derived from fixed seeds, RFC 6979 signatures), so re-running it
// reproduces the committed files byte for byte; the golden test checks that.
//
//	go run ./tests/golden/mkgolden [-out testdata/golden]        every file
//	go run ./tests/golden/mkgolden -large-only [-out DIR]        only the uncommitted large ones
//
// Files over golden.LargeSize (BIOS-sized images, var stores, synthetic shim images) are not
// committed: tests write them with golden.EnsureLarge, `make -C shim test` with -large-only.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/sevshim/sevshim/tests/golden"
)

func main() {
	out := flag.String("out", "testdata/golden", "output directory")
	largeOnly := flag.Bool("large-only", false, "write only the large generated files (not committed) where missing or stale")
	flag.Parse()
	if *largeOnly {
		if err := golden.EnsureLarge(*out); err != nil {
			fmt.Fprintln(os.Stderr, "mkgolden:", err)
			os.Exit(1)
		}
		return
	}
	files, err := golden.Generate()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkgolden:", err)
		os.Exit(1)
	}
	if err := golden.Write(*out, files); err != nil {
		fmt.Fprintln(os.Stderr, "mkgolden:", err)
		os.Exit(1)
	}
	fmt.Printf("mkgolden: wrote %d files to %s\n", len(files), *out)
}
