// Command verifier is the guest owner's tool: it checks a platform's SEV certificate chain,
// prepares launch sessions, checks launch measurements of shim images and builds
// LAUNCH_SECRET packets. See `verifier --help` and docs/verifier.md.
package main

import (
	"context"
	"os"

	"github.com/sevshim/sevshim/verifier/cli"
)

func main() { os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }
