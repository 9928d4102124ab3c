// Package docs_test runs docs/flow.md as written: it extracts the command lines of the page's
// sh blocks (and writes its yaml block to the file it names) and runs them in order, in an
// empty private directory, with freshly built builder, verifier and hostctl first on PATH,
// against the emulated PSP, real QEMU (TCG) and Debian's OVMF. The page cannot drift from
// the tools: a changed flag, a missing --root or a wrong expected line fails here.
package docs_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sevshim/sevshim/tests/harness/repo"
)

// step is one command line of the page, or a file the page writes.
type step struct {
	line     int    // line number in docs/flow.md
	cmd      string // shell command ("" for a file)
	exit     int    // expected exit status (# exit N)
	expect   string // a line of the output must start with this (# -> TEXT)
	file     string // yaml block: the file it names
	contents string
}

var (
	exitRE   = regexp.MustCompile(`#\s*exit\s+(\d+)`)
	expectRE = regexp.MustCompile(`#.*?->\s*(.+?)\s*$`)
)

// parseFlow returns the steps of the page in order. Command lines may continue with a
// trailing backslash; "#" starts a comment only after whitespace.
func parseFlow(doc []byte) ([]step, error) {
	var steps []step
	sc := bufio.NewScanner(bytes.NewReader(doc))
	n, block, start := 0, "", 0
	var buf []string
	var pending string
	for sc.Scan() {
		n++
		l := sc.Text()
		switch {
		case block == "" && (l == "```sh" || l == "```yaml"):
			block, start, buf = strings.TrimPrefix(l, "```"), n, nil
			continue
		case block != "" && l == "```":
			if block == "yaml" {
				if len(buf) == 0 || !strings.HasPrefix(buf[0], "# ") {
					return nil, fmt.Errorf("line %d: a yaml block must start with # FILE", start)
				}
				steps = append(steps, step{line: start, file: strings.TrimPrefix(buf[0], "# "), contents: strings.Join(buf[1:], "\n") + "\n"})
			}
			if pending != "" {
				return nil, fmt.Errorf("line %d: block ends inside a continued command", n)
			}
			block = ""
			continue
		case block == "":
			continue
		case block == "yaml":
			buf = append(buf, l)
			continue
		}
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if strings.HasSuffix(t, `\`) {
			pending += strings.TrimSuffix(t, `\`) + " "
			continue
		}
		full := pending + t
		pending = ""
		s := step{line: n, cmd: full}
		if i := strings.Index(full, " #"); i >= 0 {
			comment := full[i:]
			s.cmd = strings.TrimSpace(full[:i])
			if m := exitRE.FindStringSubmatch(comment); m != nil {
				s.exit, _ = strconv.Atoi(m[1])
			}
			if m := expectRE.FindStringSubmatch(comment); m != nil {
				s.expect = m[1]
			}
		}
		steps = append(steps, s)
	}
	if block != "" {
		return nil, fmt.Errorf("line %d: unterminated block", start)
	}
	return steps, sc.Err()
}

var workRE = regexp.MustCompile(`--work\s+(\S+)`)

func TestFlowDocRunsAsWritten(t *testing.T) {
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "flow.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := parseFlow(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) < 10 {
		t.Fatalf("docs/flow.md: only %d steps found", len(steps))
	}
	h := newHarness(t)
	for _, s := range steps {
		if s.file != "" {
			if err := os.WriteFile(filepath.Join(h.dir, s.file), []byte(s.contents), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		out, code := h.sh(s.cmd)
		if code != s.exit {
			t.Fatalf("docs/flow.md:%d: %s\nexit %d, the page says %d; output:\n%s", s.line, s.cmd, code, s.exit, out)
		}
		if s.expect != "" && !hasLinePrefix(out, s.expect) {
			t.Fatalf("docs/flow.md:%d: %s\nno output line starts with %q; output:\n%s", s.line, s.cmd, s.expect, out)
		}
		t.Logf("docs/flow.md:%d ok: %s", s.line, s.cmd)
	}
}

// harness: the tools built from this checkout into a private bin directory first on PATH, an
// empty private working directory, and a cleanup that stops the QEMU of every --work
// directory a command named, even when a step failed.
type harness struct {
	t        *testing.T
	bin, dir string
	env      []string
	works    map[string]bool
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	root, err := repo.Root()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{repo.OVMFCode(), repo.OVMFVars()} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("Debian's OVMF is missing (%v): apt-get install ovmf", err)
		}
	}
	if _, err := repo.QEMU(); err != nil {
		t.Fatalf("no QEMU: %v", err)
	}
	h := &harness{t: t, bin: t.TempDir(), dir: t.TempDir(), works: map[string]bool{}}
	build := exec.Command("go", "build", "-o", h.bin+"/", "./builder", "./verifier", "./hostctl")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Chmod(h.dir, 0o700); err != nil { // hostctl refuses state and work dirs others can reach
		t.Fatal(err)
	}
	h.env = append(os.Environ(), "PATH="+h.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	h.env = filterEnv(h.env, "SEVSHIM_EMU_ROOT", "SEVSHIM_SHIM_FD") // nothing set up beyond the page
	t.Cleanup(func() {
		for w := range h.works {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			c := exec.CommandContext(ctx, filepath.Join(h.bin, "hostctl"), "stop", "--work", w)
			c.Dir, c.Env = h.dir, h.env
			c.Run()
			cancel()
		}
	})
	return h
}

// sh runs one command line with bash in the working directory (bounded) and returns its
// combined output and exit status.
func (h *harness) sh(cmd string) (string, int) {
	h.t.Helper()
	return h.exec(exec.Command("bash", "-c", cmd), cmd, nil)
}

// stdout runs a tool and returns its standard output only (for JSON) and its exit status.
func (h *harness) stdout(tool string, args ...string) (string, int) {
	h.t.Helper()
	var so bytes.Buffer
	out, code := h.exec(exec.Command(filepath.Join(h.bin, tool), args...), tool+" "+strings.Join(args, " "), &so)
	if code != 0 {
		h.t.Logf("%s %v: exit %d\n%s", tool, args, code, out)
	}
	return so.String(), code
}

func (h *harness) exec(c *exec.Cmd, text string, stdout *bytes.Buffer) (string, int) {
	h.t.Helper()
	for _, m := range workRE.FindAllStringSubmatch(text, -1) {
		h.works[m[1]] = true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cc := exec.CommandContext(ctx, c.Path, c.Args[1:]...)
	cc.Dir, cc.Env, cc.WaitDelay = h.dir, h.env, 10*time.Second
	var out bytes.Buffer
	cc.Stdout, cc.Stderr = &out, &out
	if stdout != nil {
		cc.Stdout = stdout
	}
	err := cc.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		h.t.Fatalf("%s: %v", text, err)
	}
	return out.String(), code
}

func hasLinePrefix(out, prefix string) bool {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return true
		}
	}
	return false
}

func filterEnv(env []string, names ...string) []string {
	var out []string
next:
	for _, e := range env {
		for _, n := range names {
			if strings.HasPrefix(e, n+"=") {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

// The parser itself: continuations, comments, expectations, yaml files.
func TestParseFlow(t *testing.T) {
	doc := "text\n```sh\n# a comment\na --x \\\n  --y   # exit 3 -> refused: E034\nb#c   # -> ok\n```\n```yaml\n# p.yaml\nk: v\n```\n```\nnot run\n```\n"
	steps, err := parseFlow([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []step{
		{line: 5, cmd: "a --x  --y", exit: 3, expect: "refused: E034"},
		{line: 6, cmd: "b#c", expect: "ok"},
		{line: 8, file: "p.yaml", contents: "k: v\n"},
	}
	if fmt.Sprint(steps) != fmt.Sprint(want) {
		t.Fatalf("got %+v\nwant %+v", steps, want)
	}
	if _, err := parseFlow([]byte("```sh\na \\\n```\n")); err == nil {
		t.Error("a block ending in a continuation was accepted")
	}
}
