#!/usr/bin/env python3
"""Flatten testdata/golden/cases.json into the tab-separated lines test_verify.c reads:
  P file expect_block expect_region | M file structure | C name policy manifest bios vars expect
("-" = absent). usage: golden2tsv.py CASES_JSON > OUT"""
import json, sys
d = json.load(open(sys.argv[1]))
for p in d["policies"]:
    print("\t".join(["P", p["file"], p["expect_block"], p["expect_region"]]))
for m in d["manifests"]:
    print("\t".join(["M", m["file"], m["structure"]]))
for c in d["checks"]:
    print("\t".join(["C", c["name"]] + [c[k] or "-" for k in ("policy", "manifest", "bios", "vars")] + [c["expect"]]))
