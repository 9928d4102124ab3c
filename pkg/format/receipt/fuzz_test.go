package receipt_test

import (
	"bytes"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/receipt"
)

// FuzzOpen: the verifier reads receipts the provider relays. Whatever the line, ParseHex and
// Open never panic; a receipt that opens re-seals to the same bytes, and Parse accepts exactly
// the bodies Encode can produce.
func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{0x5a}, receipt.KeySize)
	var n [32]byte
	ok, _ := receipt.Seal(key, &receipt.Receipt{ShimFormat: 1, Nonce: &n})
	f.Add(receipt.Line(ok))
	f.Add(receipt.NoneLine)
	f.Add("SEVSHIM RECEIPT 00")
	f.Fuzz(func(t *testing.T, s string) {
		blob, err := receipt.ParseHex(s)
		if err != nil {
			return
		}
		if r, err := receipt.Parse(blob[:receipt.Size]); err == nil {
			enc, err := r.Encode()
			if err != nil || !bytes.Equal(enc, blob[:receipt.Size]) {
				t.Fatalf("Parse/Encode round trip: %v", err)
			}
		}
		r, err := receipt.Open(key, blob)
		if err != nil {
			return
		}
		again, err := receipt.Seal(key, r)
		if err != nil || !bytes.Equal(again, blob) {
			t.Fatalf("opened receipt does not re-seal: %v", err)
		}
	})
}
