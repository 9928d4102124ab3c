package docs_test

// The tree keeps what docs/architecture.md says about it: comments cite specifications and
// this repo's files (never notes outside it, tracker numbers or moved paths), every Go package
// says its one job, and the import rules between the layers hold.

import (
	"bufio"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/tests/harness/repo"
)

// treeRoot returns the checkout root.
func treeRoot(t *testing.T) string {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// walkTree returns the repo-relative slash paths of the files below root that keep accepts,
// leaving out build output, hidden folders and test data.
func walkTree(t *testing.T, root string, keep func(rel string) bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || rel == "build") {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() && keep(rel) {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// isCode reports whether rel is a file whose comments the scan reads: Go, C, headers, asm,
// linker scripts, X-macro tables, Makefiles and scripts.
func isCode(rel string) bool {
	switch filepath.Ext(rel) {
	case ".go", ".c", ".h", ".asm", ".inc", ".ld", ".def", ".sh", ".py":
		return true
	}
	return filepath.Base(rel) == "Makefile"
}

// outsideRefs are what a comment must not point at: notes and design files that are not in
// this repo, and tracker numbers. Cite AMD's documents ("SEV API 55766 section 6.5", "AMD64
// APM vol 2 section 15.34", "GHCB 56421") or this repo's docs/ instead.
var outsideRefs = []struct {
	re   *regexp.Regexp
	what string
}{
	{regexp.MustCompile(`(^|[^\w.-])notes/`), "a notes folder outside the repo"},
	{regexp.MustCompile(`qemu-chain-prototype`), "a prototype outside the repo"},
	{regexp.MustCompile(`sev-protocol\.md`), "a notes file outside the repo"},
	{regexp.MustCompile(`/work/shared|\.\./shared/`), "a shared folder outside the repo"},
	{regexp.MustCompile(`DESIGN\.md`), "the design file outside the repo (cite docs/*.md)"},
	{regexp.MustCompile(`(?i)\bissues?\s+#?\d+`), "a tracker number"},
	{regexp.MustCompile(`(^|[\s(\[,])#\d+\b`), "a tracker number"},
	{regexp.MustCompile(`(?i)\bwaves?\b`), "a tracker wave"},
}

// movedPaths are paths of the tree before the libraries moved under pkg/ and the test
// infrastructure under tests/ (docs/architecture.md). A bare package path of the old tree is
// caught here; a path to a file is caught by the existence check below.
var movedPaths = regexp.MustCompile(`(^|[\s("'` + "`" + `=,])(\./)?(internal/\w+|cmd/\w+|\./(bios|qemu|host|shimerr|firmware|testbios|owner|psp|sev|migrate|attest|policy|shimimage|guestpkg|tpmevent|receipt|ovmf)\b|bios/(layout|fv)\b|(bios|qemu|host|shimerr|firmware|testbios|owner|psp|sev|migrate|attest|policy|shimimage|guestpkg|tpmevent|receipt|ovmf)/(\s|$|[)` + "`" + `'",]))`)

// filePath is a path to a source or doc file named in a line.
var filePath = regexp.MustCompile(`(^|[\s("'` + "`" + `=,\[])((\./)?[A-Za-z_][\w.-]*(/[\w.-]+)+\.(go|c|h|asm|inc|def|ld|sh|py|md))\b`)

// foreignFiles are source files of other projects that comments cite by their own path.
var foreignFiles = regexp.MustCompile(`^(migration/|include/uapi/|arch/x86/|docs/specs/|tests/secretbuild\.rs)`)

// TestCommentsCiteNoOutsideFiles: no source file, Makefile, script or doc names a notes file
// outside the repo, a tracker number or a path that has moved, and every repo file a line
// names exists (relative to the root, the file's folder, shim/, shim/include or
// testdata/golden).
func TestCommentsCiteNoOutsideFiles(t *testing.T) {
	root := treeRoot(t)
	self := "tests/docs/tree_test.go"
	exists := func(from, p string) bool {
		bases := []string{"", filepath.Dir(from), "shim", "shim/include", "testdata/golden"}
		if rest, ok := strings.CutPrefix(p, "./"); ok {
			// a package pattern or a script's path: relative to the root or the file's
			// folder; ./internal/... also to a folder the file is in (the package that
			// owns that internal/, where its go:generate line runs)
			p, bases = rest, bases[:2]
			for d := filepath.Dir(from); strings.HasPrefix(p, "internal/") && d != "."; d = filepath.Dir(d) {
				bases = append(bases, d)
			}
		}
		for _, base := range bases {
			if _, err := os.Stat(filepath.Join(root, base, p)); err == nil {
				return true
			}
		}
		return false
	}
	files := walkTree(t, root, func(rel string) bool {
		return rel != self && (isCode(rel) || rel == "README.md" || strings.HasPrefix(rel, "docs/"))
	})
	if len(files) < 100 {
		t.Fatalf("only %d files scanned: is %s the checkout?", len(files), root)
	}
	bad := 0
	for _, rel := range files {
		f, err := os.Open(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			report := func(what, m string) {
				bad++
				t.Errorf("%s:%d: %s (%q)", rel, n, what, strings.TrimSpace(m))
			}
			for _, o := range outsideRefs {
				if m := o.re.FindString(line); m != "" {
					report(o.what, m)
				}
			}
			for _, m := range movedPaths.FindAllStringSubmatch(line, -1) {
				p := strings.TrimRight(m[2]+m[3], " )`'\",")
				if !exists(rel, p) {
					report("a path of the old tree (see docs/architecture.md)", p)
				}
			}
			for _, m := range filePath.FindAllStringSubmatch(line, -1) {
				if p := m[2]; !foreignFiles.MatchString(p) && !exists(rel, p) {
					report("names a file that does not exist", p)
				}
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", rel, err)
		}
		f.Close()
	}
	if bad > 0 {
		t.Logf("%d lines point nowhere: cite the specification or the repo's docs/*.md instead", bad)
	}
}

// TestHeadersDeclareOnlyDefinedFunctions: every function a shim header declares (not static
// inline) is defined in a C or asm file of shim/, so no header promises a name nothing
// provides.
func TestHeadersDeclareOnlyDefinedFunctions(t *testing.T) {
	root := treeRoot(t)
	decl := regexp.MustCompile(`^[A-Za-z_][\w\s\*]*?\b(\w+)\s*\([^;{]*\)\s*(__attribute__\(\(.*\)\)\s*)?;`)
	var defs strings.Builder
	for _, rel := range walkTree(t, root, func(rel string) bool {
		return strings.HasPrefix(rel, "shim/") && (strings.HasSuffix(rel, ".c") || strings.HasSuffix(rel, ".asm"))
	}) {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		defs.Write(b)
		defs.WriteByte('\n')
	}
	all := defs.String()
	headers := walkTree(t, root, func(rel string) bool {
		return strings.HasPrefix(rel, "shim/include/") && strings.HasSuffix(rel, ".h")
	})
	if len(headers) == 0 {
		t.Fatal("no headers under shim/include")
	}
	for _, rel := range headers {
		b, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "static") || strings.HasPrefix(line, "typedef") || strings.HasPrefix(line, "#") {
				continue
			}
			m := decl.FindStringSubmatch(line)
			if m == nil {
				continue
			}
			name := m[1]
			def := regexp.MustCompile(`(?m)^[A-Za-z_][\w\s\*]*\b` + name + `\s*\([^)]*\)\s*(\{|$)|(?m)^\s*(global\s+` + name + `\b|` + name + `:)`)
			if !def.MatchString(all) {
				t.Errorf("%s:%d: %s is declared but defined nowhere in shim/", rel, n+1, name)
			}
		}
	}
}

// TestEveryPackageHasDoc: every Go package says its one job in a doc comment, "// Package x
// ..." ("// Command x ..." for a program); a package of tests only carries it in one of its
// test files.
func TestEveryPackageHasDoc(t *testing.T) {
	root := treeRoot(t)
	dirs := map[string]bool{}
	for _, rel := range walkTree(t, root, func(rel string) bool { return strings.HasSuffix(rel, ".go") }) {
		dirs[filepath.Dir(rel)] = true
	}
	if len(dirs) < 30 {
		t.Fatalf("only %d Go packages found below %s", len(dirs), root)
	}
	for dir := range dirs {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, filepath.Join(root, dir), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		for name, p := range pkgs {
			if strings.HasSuffix(name, "_test") && len(pkgs) > 1 {
				continue // the external tests of a package that has its own doc
			}
			want := []string{"Package " + name + " ", "Package " + strings.TrimSuffix(name, "_test") + " "}
			if name == "main" {
				want = []string{"Command "}
			}
			var docs []string
			for _, f := range p.Files {
				if f.Doc != nil {
					docs = append(docs, f.Doc.Text())
				}
			}
			if !slices.ContainsFunc(docs, func(d string) bool {
				return (strings.HasPrefix(d, want[0]) || strings.HasPrefix(d, want[1%len(want)])) && len(strings.Fields(d)) >= 6
			}) {
				t.Errorf("%s (package %s) has no doc comment starting %q that says its one job (found %q)", dir, name, want, docs)
			}
		}
	}
}

// importException is an import that breaks a rule below for now, and who removes it.
type importException struct{ from, to, why string }

// importExceptions are the only imports allowed to break the rules of docs/architecture.md.
// Each says why.
var importExceptions = []importException{
	{"pkg/format/guestpkg", "pkg/sev", "the guest package carries SEV transport packets and the SEND_START header"},
	{"pkg/format/guestpkg", "pkg/migrate", "the guest package carries a QEMU migration stream's records"},
	{"pkg/format/receipt", "pkg/sev", "the receipt key travels in the SEV launch secret's GUID table"},
}

// importRule says which project packages a group of packages may (or must not) import.
type importRule struct {
	who  []string // the packages the rule is about ("x/..." is x and everything below)
	may  []string // allow-list: only these project packages (nil: no allow-list)
	none bool     // no project package at all
	not  []string // deny-list
	deps bool     // check the whole dependency closure (a binary), not the direct imports
	what string
}

// leaves are the packages every package may import: they import nothing of the project.
var leaves = []string{"pkg/atomicfile"}

// and is the allow-list pats plus the leaves.
func and(pats ...string) []string { return append(slices.Clone(pats), leaves...) }

var (
	formats     = []string{"pkg/format/...", "pkg/keys"}
	importRules = []importRule{
		{who: formats, may: and(formats...), what: "formats import nothing of the project except other formats"},
		{who: append([]string{"pkg/migrate", "pkg/cli/clierr"}, leaves...), none: true, what: "the QEMU stream, the file helper and the CLI error words import nothing of the project"},
		{who: []string{"pkg/sev"}, may: and(formats...), what: "the SEV protocol imports formats only"},
		{who: []string{"pkg/psp"}, may: and(append([]string{"pkg/sev"}, formats...)...), what: "the PSP backends import formats and the SEV protocol only"},
		{who: []string{"pkg/ovmf", "pkg/verifyref"}, may: and(formats...), what: "the OVMF reader and the reference model of verify.c import formats only"},
		{who: []string{"pkg/vmm/..."}, not: []string{"pkg/host", "pkg/owner", "pkg/psp"}, what: "the VMM seam and its backends know nothing of host flows, owner decisions or the PSP"},
		{who: []string{"pkg/owner"}, not: []string{"pkg/psp", "pkg/host", "pkg/vmm/..."}, what: "owner decisions run without a PSP or a VMM"},
		{who: []string{"pkg/host"}, not: []string{"pkg/vmm/qemu", "pkg/vmm/libvirt"}, what: "host flows use the VMM seam, not a backend"},
		{who: []string{"pkg/..."}, not: []string{"builder/...", "verifier/...", "hostctl/...", "tests/...", "scripts/...", "shim/..."}, what: "libraries import no CLI, test or script package"},
		{who: []string{"builder", "verifier", "hostctl"}, deps: true, not: []string{"tests/..."}, what: "nothing shipped links a test package (tests/harness/repo finds the checkout)"},
		{who: []string{"verifier"}, deps: true, not: []string{"pkg/psp", "pkg/host", "pkg/vmm/..."}, what: "the verifier does not link the PSP backends, host flows or a VMM"},
	}
)

// matchPkg reports whether pkg (module-relative) is pat or, for "x/...", x or below it.
func matchPkg(pkg, pat string) bool {
	if x, ok := strings.CutSuffix(pat, "/..."); ok {
		return pkg == x || strings.HasPrefix(pkg, x+"/")
	}
	return pkg == pat
}

func matchAny(pkg string, pats []string) bool {
	return slices.ContainsFunc(pats, func(p string) bool { return matchPkg(pkg, p) })
}

// goList runs go list in root with format f over pattern and returns, per package
// (module-relative), the module-relative project packages of the list the format prints.
func goList(t *testing.T, root, f string, args ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}} " + f}, args...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	prefix := repo.Module + "/"
	res := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		from := strings.TrimPrefix(fields[0], prefix)
		res[from] = []string{}
		for _, imp := range fields[1:] {
			if rest, ok := strings.CutPrefix(imp, prefix); ok {
				res[from] = append(res[from], rest)
			}
		}
	}
	return res
}

// TestImportRules: the dependency rules of docs/architecture.md hold for every package's
// own imports (tests excluded) and for the binaries' dependency closures.
func TestImportRules(t *testing.T) {
	root := treeRoot(t)
	imports := goList(t, root, `{{join .Imports " "}}`, "./...")
	deps := goList(t, root, `{{join .Deps " "}}`, "./builder", "./verifier", "./hostctl")
	if len(imports) < 30 || len(deps) != 3 {
		t.Fatalf("go list found %d packages and %d binaries", len(imports), len(deps))
	}
	used := map[importException]bool{}
	excepted := func(from, to string) bool {
		for _, e := range importExceptions {
			if e.from == from && e.to == to {
				used[e] = true
				return true
			}
		}
		return false
	}
	for _, r := range importRules {
		graph := imports
		if r.deps {
			graph = deps
		}
		for from, tos := range graph {
			if !matchAny(from, r.who) {
				continue
			}
			for _, to := range tos {
				broken := (r.none) || (r.may != nil && !matchAny(to, r.may)) || matchAny(to, r.not)
				if broken && !excepted(from, to) {
					t.Errorf("%s imports %s: breaks %q", from, to, r.what)
				}
			}
		}
	}
	for _, e := range importExceptions {
		if !used[e] {
			t.Errorf("importExceptions: %s -> %s is no longer needed (%s): delete it", e.from, e.to, e.why)
		}
	}
}

// The rules in docs/architecture.md are these rules: a rule added here is written there.
func TestImportRulesDocumented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(treeRoot(t), "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range importRules {
		if !strings.Contains(string(b), r.what) {
			t.Errorf("docs/architecture.md does not state the rule %q", r.what)
		}
	}
}
