// Command readme rewrites the generated performance table of README.md from the JSON file
// `make bench BENCH_JSON=FILE` wrote (go run ./tests/bench/readme -in FILE); the numbers in
// the README come from a bench run, never typed.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/sevshim/sevshim/tests/bench/figures"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

func main() {
	in := flag.String("in", "", "the bench's JSON file (make bench BENCH_JSON=FILE)")
	readme := flag.String("readme", "", "the README to rewrite (default: the checkout's README.md)")
	flag.Parse()
	if err := run(*in, *readme); err != nil {
		fmt.Fprintln(os.Stderr, "readme:", err)
		os.Exit(1)
	}
}

func run(in, readme string) error {
	if in == "" {
		return fmt.Errorf("-in FILE is required")
	}
	if readme == "" {
		root, err := repo.Root()
		if err != nil {
			return err
		}
		readme = filepath.Join(root, "README.md")
	}
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	rep, err := figures.ReadJSON(f)
	if err != nil {
		return err
	}
	rep.Finish()
	doc, err := os.ReadFile(readme)
	if err != nil {
		return err
	}
	out, err := figures.ReplaceSection(string(doc), rep.Markdown())
	if err != nil {
		return err
	}
	return os.WriteFile(readme, []byte(out), 0o644)
}
