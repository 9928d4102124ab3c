// Command mangen writes the man pages of builder, verifier and hostctl (section 1), generated
// from their cobra command trees so they say exactly what --help says:
//
//	go run ./scripts/mangen -out build/man
//
// One page per command (builder.1, builder-build.1, hostctl-receive.1, ...). The date in the
// pages is $SOURCE_DATE_EPOCH when set (the Makefile sets the commit time), so the pages are
// reproducible.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	builder "github.com/sevshim/sevshim/builder/cli"
	hostctl "github.com/sevshim/sevshim/hostctl/cli"
	"github.com/sevshim/sevshim/pkg/cli/version"
	verifier "github.com/sevshim/sevshim/verifier/cli"
)

// Generate writes the pages of all three tools into dir.
func Generate(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	v := version.Get().Version
	for _, root := range []*cobra.Command{builder.NewRoot(), verifier.NewRoot(), hostctl.NewRoot()} {
		root.DisableAutoGenTag = true
		h := &doc.GenManHeader{Section: "1", Source: "sevshim " + v, Manual: "sevshim manual"}
		if err := doc.GenManTree(root, h, dir); err != nil {
			return fmt.Errorf("%s: %w", root.Name(), err)
		}
	}
	return nil
}

func main() {
	out := flag.String("out", "build/man", "directory for the man pages")
	flag.Parse()
	if err := Generate(*out); err != nil {
		fmt.Fprintln(os.Stderr, "mangen:", err)
		os.Exit(1)
	}
}
