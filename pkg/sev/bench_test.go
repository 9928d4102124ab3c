package sev

import (
	"crypto/rand"
	"testing"
)

// benchPage returns a transport under fresh keys, a random 4 KiB page and a 4 KiB buffer.
func benchPage() (*Transport, []byte, []byte) {
	keys, _ := NewTransportKeys(nil)
	page := make([]byte, 4096)
	rand.Read(page)
	return NewTransport(keys), page, make([]byte, 4096)
}

// Packet wrap (SEND_UPDATE_DATA: AES-128-CTR + HMAC-SHA256) on one core, 4 KiB pages. The
// ratio to this machine's limit (Go's AES-CTR + HMAC on the same buffers) is make bench's
// (tests/bench, packet rows).
func BenchmarkPacketSeal4K(b *testing.B) {
	tr, page, trans := benchPage()
	var iv [16]byte
	b.SetBytes(4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		iv[0] = byte(i)
		if _, err := tr.Seal(trans, page, iv); err != nil {
			b.Fatal(err)
		}
	}
}

// Packet unwrap (RECEIVE_UPDATE_DATA: MAC check + AES-128-CTR) on one core, 4 KiB pages.
func BenchmarkPacketOpen4K(b *testing.B) {
	tr, page, trans := benchPage()
	h, _ := tr.Seal(trans, page, [16]byte{1})
	out := make([]byte, 4096)
	b.SetBytes(4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := tr.Open(out, &h, trans, 4096); err != nil {
			b.Fatal(err)
		}
	}
}

func benchChain(b *testing.B, p string) {
	c := loadChain(b, p)
	BuiltinRoots()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := VerifyChain(c, VerifyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// Full chain verification: ARK self, ARK->ASK, ASK->CEK (RSA-PSS), 4 ECDSA P-384 checks.
func BenchmarkVerifyChainNaples(b *testing.B) { benchChain(b, "naples") }
func BenchmarkVerifyChainRome(b *testing.B)   { benchChain(b, "rome") }

func BenchmarkParseFullChainRome(b *testing.B) {
	raw := loadChain(b, "rome").Marshal()
	b.SetBytes(int64(len(raw)))
	for i := 0; i < b.N; i++ {
		if _, err := ParseFullChain(raw); err != nil {
			b.Fatal(err)
		}
	}
}
