// Command builder makes and explains sevshim files. See `builder --help`.
package main

import (
	"context"
	"os"

	"github.com/sevshim/sevshim/builder/cli"
)

func main() { os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdout, os.Stderr)) }
