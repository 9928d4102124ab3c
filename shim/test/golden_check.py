#!/usr/bin/env python3
"""Run every `checks` case of testdata/golden/cases.json through sevshim-verify (the C code).
usage: golden_check.py SEVSHIM_VERIFY GOLDEN_DIR  -> prints 'golden-checks: N passed, M failed'"""
import json, os, subprocess, sys
tool, g = sys.argv[1], sys.argv[2]
cases = json.load(open(os.path.join(g, "cases.json")))
ok = bad = 0
for c in cases["checks"]:
    args = [tool] + [os.path.join(g, c[k]) if c[k] else "-" for k in ("policy", "manifest", "bios", "vars")]
    out = subprocess.run(args, capture_output=True, text=True).stdout.strip()
    if out == c["expect"]:
        ok += 1
    else:
        bad += 1
        print(f"golden check {c['name']}: got {out!r}, want {c['expect']!r}")
print(f"golden-checks: {ok} passed, {bad} failed")
sys.exit(1 if bad else 0)
