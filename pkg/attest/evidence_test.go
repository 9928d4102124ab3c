package attest

import (
	"bytes"
	"crypto"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/manifest"
	"github.com/sevshim/sevshim/pkg/format/tpmevent"
	"github.com/sevshim/sevshim/tests/harness/repo"
)

func TestEvidenceJSONRoundTrip(t *testing.T) {
	event := testEvent(5)
	ev, _ := makeEvidence(t, event, nil)
	ev.QuoteBank = 0x000B // TPM_ALG_SHA256
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	var back Evidence
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if err := Verify(&back, event); err != nil {
		t.Fatalf("evidence does not verify after a JSON round trip: %v", err)
	}
	if got := strings.Join(back.BankNames(), ","); got != "sha1,sha256,sha384" {
		t.Fatalf("banks %s", got)
	}
	// strictness: each of these edits must be refused with an error naming the field
	for name, edit := range map[string]func(m map[string]any){
		"format":     func(m map[string]any) { m["format"] = "other" },
		"pcr":        func(m map[string]any) { m["pcr"] = 24 },
		"quote_bank": func(m map[string]any) { m["quote_bank"] = "sha1" },
		"banks":      func(m map[string]any) { m["banks"] = map[string]any{"md5": "00"} },
		"bank size":  func(m map[string]any) { m["banks"] = map[string]any{"sha256": "00"} },
		"nonce":      func(m map[string]any) { m["nonce"] = "zz" },
		"ak":         func(m map[string]any) { m["ak"] = "not pem" },
	} {
		var m map[string]any
		json.Unmarshal(b, &m)
		edit(m)
		nb, _ := json.Marshal(m)
		var e Evidence
		if err := json.Unmarshal(nb, &e); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// EventFor must produce exactly the event the shim records: fields from the bundle's manifest,
// the policy digest and PCR from the shim image (the demo image and bundle from `make images`).
func TestEventForDemoImage(t *testing.T) {
	build, err := repo.BuildDir()
	if err != nil {
		t.Fatal(err)
	}
	img, err1 := os.ReadFile(build + "/images/shim-demo.fd")
	man, _, m, err2 := manifest.ReadBundle(build + "/images/v6.bundle")
	if err1 != nil || err2 != nil {
		if os.Getenv("SEVSHIM_ALLOW_SKIP") == "1" {
			t.Skip("demo images missing: run make images")
		}
		t.Fatalf("demo images missing (run make images): %v %v", err1, err2)
	}
	x, err := EventFor(img, man, nil)
	if err != nil {
		t.Fatal(err)
	}
	e, err := tpmevent.Parse(x.Event)
	if err != nil {
		t.Fatal(err)
	}
	if e.BIOSVersion != 6 || e.SignerKeyID != m.SignerKeyID || e.BIOSDigest != m.ImageDigest || e.Layout != m.Layout {
		t.Fatalf("event fields %+v do not match the manifest %+v", e, m)
	}
	if x.PCR != 15 || x.Mode != 1 {
		t.Fatalf("demo policy has PCR 15, mode if-present; got PCR %d mode %d", x.PCR, x.Mode)
	}
	if e.VarStore || e.VarsDigest != ([48]byte{}) {
		t.Fatalf("nil vars: the event must say no var store: %+v", e)
	}
	vd := [48]byte{1, 2, 3}
	xv, err := EventFor(img, man, &vd)
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := tpmevent.Parse(xv.Event); err != nil || !ev.VarStore || ev.VarsDigest != vd || bytes.Equal(xv.Event, x.Event) {
		t.Fatalf("with a var store: %+v %v", ev, err)
	}
	if _, err := EventFor(img[:len(img)-1], man, nil); err == nil {
		t.Fatal("accepted a truncated shim image")
	}
	if _, err := EventFor(img, man[:100], nil); err == nil {
		t.Fatal("accepted a truncated manifest")
	}
	_ = crypto.SHA256
}
