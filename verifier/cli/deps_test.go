package cli

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/sevshim/sevshim/"

// testImportsAllowed lists the shipped packages that may still import test infrastructure
// (tests/...) for now. It only ever shrinks; the goal is empty.
var testImportsAllowed = map[string]bool{
	module + "pkg/host":     true,
	module + "pkg/vmm/qemu": true,
}

// goList runs `go list` in the module root with the given arguments and returns its lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(gobin, append([]string{"list"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// The verifier runs on the owner's machine: it must not link the PSP backends (the emulator,
// the Linux /dev/sev driver), the VMM, the host flows or any test infrastructure.
func TestVerifierLinksNoPSPOrVMM(t *testing.T) {
	deps := goList(t, "-deps", "./verifier")
	if len(deps) < 5 {
		t.Fatalf("go list -deps ./verifier gave %d packages", len(deps))
	}
	for _, d := range deps {
		for _, bad := range []string{"pkg/psp", "pkg/vmm", "pkg/host", "pkg/migrate", "tests/", "builder/"} {
			if strings.HasPrefix(d, module+bad) {
				t.Errorf("the verifier links %s", d)
			}
		}
	}
}

// Nothing shipped (pkg/..., builder, verifier, hostctl) imports a package under tests/, except
// the packages in testImportsAllowed.
func TestShippedImportsNoTests(t *testing.T) {
	lines := goList(t, "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`,
		"./pkg/...", "./builder/...", "./verifier/...", "./hostctl/...")
	var offenders []string
	for _, l := range lines {
		f := strings.Fields(l)
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, module+"tests/") && !testImportsAllowed[f[0]] {
				offenders = append(offenders, f[0]+" imports "+imp)
			}
		}
	}
	sort.Strings(offenders)
	for _, o := range offenders {
		t.Error(o)
	}
}
