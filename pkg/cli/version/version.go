// Package version says which sevshim a binary is: the Go module version (a tag for
// `go install ...@vX`, "(devel)" for a checkout build), the VCS commit the toolchain recorded,
// and the SHA-256 of the shim template embedded in it (package firmware).
package version

import (
	"fmt"
	"regexp"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/sevshim/sevshim/pkg/firmware"
)

// commit is set by the Makefile (-ldflags -X) for builds where the Go toolchain records no
// VCS information (GOFLAGS=-buildvcs=false, a git worktree it cannot read).
var commit string

// Info is what --version prints.
type Info struct {
	Module     string `json:"module"`
	Version    string `json:"version"`
	Commit     string `json:"commit"`
	Modified   bool   `json:"modified"`
	GoVersion  string `json:"go"`
	ShimSHA256 string `json:"shim_sha256"`
}

// Get reads the build information of the running binary.
func Get() Info {
	in := Info{Module: "github.com/sevshim/sevshim", Version: "unknown", Commit: "unknown", ShimSHA256: firmware.Digest()}
	if commit != "" {
		in.Commit = commit
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return in
	}
	in.GoVersion = bi.GoVersion
	if bi.Main.Path != "" {
		in.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Commit = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	if in.Commit == "unknown" {
		if c := pseudoCommit(in.Version); c != "" {
			in.Commit = c
		}
	}
	return in
}

// pseudoRE matches the commit suffix of a Go pseudo-version (v0.0.0-20261201232707-0bfa5acf6382,
// also vX.Y.Z-pre.0.DATE-HASH): what `go install ...@COMMIT` records instead of VCS data.
var pseudoRE = regexp.MustCompile(`[.-]\d{14}-([0-9a-f]{12})(\+incompatible)?$`)

func pseudoCommit(v string) string {
	if m := pseudoRE.FindStringSubmatch(v); m != nil {
		return m[1]
	}
	return ""
}

// String is the --version text of tool, e.g.
//
//	builder version (devel) github.com/sevshim/sevshim
//	commit: 0bfa5ac… (modified)
//	go: go1.26.8
//	shim template sha256: 073c…
func (in Info) String(tool string) string { return tool + " version " + in.body() + "\n" }

func (in Info) body() string {
	c := in.Commit
	if in.Modified {
		c += " (modified)"
	}
	return fmt.Sprintf("%s %s\ncommit: %s\ngo: %s\nshim template sha256: %s", in.Version, in.Module, c, in.GoVersion, in.ShimSHA256)
}

// Attach gives root a --version flag that prints Get().String(root.Name()). It relies on
// cobra's default version output ("NAME version VERSION"): a custom version template would
// make cobra execute text/template, which turns off the linker's dead-code elimination of
// methods (+2 MB per binary).
func Attach(root *cobra.Command) {
	root.Version = Get().body()
}
