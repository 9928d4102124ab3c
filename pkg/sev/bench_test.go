package sev

import (
	"crypto/rand"
	"testing"
)

// Packet wrap (SEND_UPDATE_DATA: AES-128-CTR + HMAC-SHA256) on one core, 4 KiB pages.
func BenchmarkPacketSeal4K(b *testing.B) {
	keys, _ := NewTransportKeys(nil)
	tr := NewTransport(keys)
	page := make([]byte, 4096)
	rand.Read(page)
	trans := make([]byte, 4096)
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
	keys, _ := NewTransportKeys(nil)
	tr := NewTransport(keys)
	page := make([]byte, 4096)
	rand.Read(page)
	trans := make([]byte, 4096)
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
