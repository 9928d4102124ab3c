// Command mkgolden writes testdata/golden: keys, BIOS test images, policy blocks, manifests,
// synthetic shim images, the C unit-test vectors (vectors/) and cases.json describing each file
// and its expected outcome. Output is fully deterministic (keys derived from fixed seeds, RFC
// 6979 signatures), so re-running it reproduces the committed files byte for byte; the golden
// test checks that.
//
//	go run ./tests/golden/mkgolden [-out testdata/golden]        every file
//	go run ./tests/golden/mkgolden -large-only [-out DIR]        only the uncommitted large ones
//	go run ./tests/golden/mkgolden -check-template SHIM.fd       check a shim template's footer
//
// Files over golden.LargeSize (BIOS-sized images, var stores, synthetic shim images) are not
// committed: tests write them with golden.EnsureLarge, `make -C shim test` with -large-only.
// `make -C shim check-image` runs -check-template on every layout's template it built.
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
	template := flag.String("check-template", "", "check the footer table of this shim template and exit")
	flag.Parse()
	switch {
	case *template != "":
		img, err := os.ReadFile(*template)
		if err == nil {
			var summary string
			if summary, err = golden.CheckTemplate(img); err == nil {
				fmt.Println(summary)
				return
			}
		}
		fail(fmt.Errorf("%s: %w", *template, err))
	case *largeOnly:
		if err := golden.EnsureLarge(*out); err != nil {
			fail(err)
		}
		return
	}
	files, err := golden.Generate()
	if err != nil {
		fail(err)
	}
	if err := golden.Write(*out, files); err != nil {
		fail(err)
	}
	fmt.Printf("mkgolden: wrote %d files to %s\n", len(files), *out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "mkgolden:", err)
	os.Exit(1)
}
