// Command mkgolden writes testdata/golden: keys, BIOS test images, policy blocks, manifests,
// synthetic shim images and cases.json describing each file and its expected outcome. Output is
// fully deterministic (keys derived from fixed seeds, RFC 6979 signatures), so re-running it
// reproduces the committed files byte for byte; the golden test checks that.
//
//	go run ./internal/cmd/mkgolden [-out testdata/golden]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/sevshim/sevshim/internal/golden"
)

func main() {
	out := flag.String("out", "testdata/golden", "output directory")
	flag.Parse()
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
