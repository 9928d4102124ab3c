// Package command holds the cobra plumbing the three tools (builder, verifier, hostctl) share:
// the root command with plain-word flag errors and --version, running it with the process's
// arguments and streams, the exit code an error carries, and the JSON the commands print.
package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/sevshim/sevshim/pkg/cli/clierr"
	"github.com/sevshim/sevshim/pkg/cli/version"
)

// NewRoot makes a tool's root command: usage and errors are not printed by cobra (Main prints
// the error once), flag errors are in plain words (package clierr), --version is attached
// (package version) and subs are its subcommands.
func NewRoot(use, short, long string, subs ...*cobra.Command) *cobra.Command {
	root := &cobra.Command{
		Use:           use,
		Short:         short,
		Long:          long,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(clierr.FlagError)
	root.AddCommand(subs...)
	version.Attach(root)
	return root
}

// Execute runs root with args, writing to stdout and stderr, and returns the command's error.
func Execute(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) error {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// Main runs root as Execute does and returns the process exit code: 0, or for an error the
// code it carries (ExitCode) after printing "tool: error" to stderr.
func Main(ctx context.Context, tool string, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	if err := Execute(ctx, root, args, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, tool+":", err)
		return ExitCode(err)
	}
	return 0
}

// ExitError is an error that carries its own process exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the exit code for an error returned by a command: the code of an ExitError in
// its chain, else 1.
func ExitCode(err error) int {
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	return 1
}

// WriteJSON writes v to w as indented JSON without HTML escaping, the form every --json
// output of the tools has.
func WriteJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetEscapeHTML(false)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

// PrintReport prints r as JSON with asJSON, else as text; it returns the JSON write's error.
func PrintReport[R any](cmd *cobra.Command, asJSON bool, r R, text func(io.Writer, R)) error {
	if asJSON {
		return WriteJSON(cmd.OutOrStdout(), r)
	}
	text(cmd.OutOrStdout(), r)
	return nil
}
