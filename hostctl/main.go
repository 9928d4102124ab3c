// Command hostctl is the host side of sevshim: PSP platform commands, the owner's private
// two-phase launch of a shim, export of the guest into a guest package, and the provider's
// receive into a fresh QEMU. See `hostctl --help` and docs/hostctl.md.
package main

import (
	"context"
	"os"

	"github.com/sevshim/sevshim/hostctl/cli"
)

func main() { os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }
