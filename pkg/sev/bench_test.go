package sev

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"slices"
	"testing"
	"time"
)

// benchPage returns a transport under fresh keys, a random 4 KiB page and a 4 KiB buffer.
func benchPage() (*Transport, []byte, []byte) {
	keys, _ := NewTransportKeys(nil)
	page := make([]byte, 4096)
	rand.Read(page)
	return NewTransport(keys), page, make([]byte, 4096)
}

// Packet wrap (SEND_UPDATE_DATA: AES-128-CTR + HMAC-SHA256) on one core, 4 KiB pages.
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

// The machine's limit for one packet: Go's own AES-128-CTR (a fresh stream per packet, as
// every packet has its own IV) plus a keyed HMAC-SHA-256 (Reset per packet) over the same
// 4 KiB buffer, with nothing of the packet format around them.
func BenchmarkPacketLimit4K(b *testing.B) {
	l := newLimit4K()
	b.SetBytes(4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.run(i)
	}
}

// limit4K is BenchmarkPacketLimit4K's loop body: the machine's limit for one 4 KiB packet.
type limit4K struct {
	blk  cipher.Block
	mac  hash.Hash
	iv   [16]byte
	sum  [32]byte
	page []byte
	out  []byte
}

func newLimit4K() *limit4K {
	keys, _ := NewTransportKeys(nil)
	blk, _ := aes.NewCipher(keys.TEK[:])
	l := &limit4K{blk: blk, mac: hmac.New(sha256.New, keys.TIK[:]), page: make([]byte, 4096), out: make([]byte, 4096)}
	rand.Read(l.page)
	return l
}

func (l *limit4K) run(i int) {
	l.iv[0] = byte(i)
	cipher.NewCTR(l.blk, l.iv[:]).XORKeyStream(l.out, l.page)
	l.mac.Reset()
	l.mac.Write(l.out)
	l.mac.Sum(l.sum[:0])
}

// pairedRatio runs op and the limit in alternating batches of 16 packets, so that both see
// the same load on a shared machine. It reports both throughputs (total bytes over total
// time) and, as "ratio", the median over the batch pairs of limit time / op time: a pair
// that a preemption hit is an outlier there, not a weight on the result.
func pairedRatio(b *testing.B, op func(i int)) {
	l := newLimit4K()
	const batch = 16
	var tOp, tLim time.Duration
	var ratios []float64
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		t0 := time.Now()
		for i := 0; i < batch; i++ {
			op(i)
		}
		t1 := time.Now()
		for i := 0; i < batch; i++ {
			l.run(i)
		}
		dOp, dLim := t1.Sub(t0), time.Since(t1)
		tOp, tLim = tOp+dOp, tLim+dLim
		ratios = append(ratios, dLim.Seconds()/dOp.Seconds())
	}
	b.StopTimer()
	slices.Sort(ratios)
	n := float64(len(ratios) * batch * 4096)
	b.ReportMetric(n/tOp.Seconds()/1e6, "MB/s-packet")
	b.ReportMetric(n/tLim.Seconds()/1e6, "MB/s-limit")
	b.ReportMetric(ratios[len(ratios)/2], "ratio")
}

// BenchmarkPacketSealRatio: Seal against the limit, paired in one run.
func BenchmarkPacketSealRatio(b *testing.B) {
	tr, page, trans := benchPage()
	var iv [16]byte
	pairedRatio(b, func(i int) {
		iv[0] = byte(i)
		if _, err := tr.Seal(trans, page, iv); err != nil {
			b.Fatal(err)
		}
	})
}

// BenchmarkPacketOpenRatio: Open against the limit, paired in one run.
func BenchmarkPacketOpenRatio(b *testing.B) {
	tr, page, trans := benchPage()
	h, _ := tr.Seal(trans, page, [16]byte{1})
	out := make([]byte, 4096)
	pairedRatio(b, func(int) {
		if err := tr.Open(out, &h, trans, 4096); err != nil {
			b.Fatal(err)
		}
	})
}
