package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/sevshim/sevshim/pkg/sev"
	"github.com/sevshim/sevshim/tests/bench/figures"
)

const pageBytes = 4096

// interleaved runs the ops in turn, a batch of calls each, the order reversed every other
// turn, until d has passed, and returns each one's median time per call over its batches:
// host noise then falls on all of them alike, and a batch the scheduler interrupted does not
// move the median.
func interleaved(d time.Duration, ops []func() error) ([]float64, error) {
	const batch = 32
	per := make([][]float64, len(ops))
	for start, turn := time.Now(), 0; time.Since(start) < d; turn++ {
		for k := range ops {
			if turn%2 == 1 {
				k = len(ops) - 1 - k
			}
			t0 := time.Now()
			for c := 0; c < batch; c++ {
				if err := ops[k](); err != nil {
					return nil, err
				}
			}
			per[k] = append(per[k], float64(time.Since(t0).Nanoseconds())/batch)
		}
	}
	ns := make([]float64, len(ops))
	for k := range ops {
		_, ns[k], _ = figures.Stats(per[k])
	}
	return ns, nil
}

// mbps is the throughput of 4 KiB per ns (10^6 bytes per second).
func mbps(ns float64) float64 { return pageBytes / ns * 1e3 }

// packetRounds measures, rounds times for d each, sev.Transport's seal and open of a 4 KiB
// page and the limit of this machine for one (Go's AES-128-CTR plus HMAC-SHA-256 over the
// same buffers, the two times added), interleaved; each round gives one sample of every
// packet row, the ratios pairing a packet with the limit measured alongside it.
func packetRounds(rounds int, d time.Duration, rep *figures.Report) error {
	keys, err := sev.NewTransportKeys(nil)
	if err != nil {
		return err
	}
	tr := sev.NewTransport(keys)
	// sealed is the packet open reads; trans is where seal writes (each seal a fresh IV)
	page, trans, sealed, out := make([]byte, pageBytes), make([]byte, pageBytes), make([]byte, pageBytes), make([]byte, pageBytes)
	rand.Read(page)
	var iv [16]byte
	h, err := tr.Seal(sealed, page, iv)
	if err != nil {
		return err
	}
	blk, err := aes.NewCipher(keys.TEK[:])
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, keys.TIK[:])
	var sum [sha256.Size]byte
	var n byte
	ops := []struct {
		name string
		op   func() error
	}{
		{"seal", func() error {
			n++
			iv[0] = n
			_, err := tr.Seal(trans, page, iv)
			return err
		}},
		{"open", func() error { return tr.Open(out, &h, sealed, pageBytes) }},
		{"aes", func() error {
			n++
			iv[0] = n
			cipher.NewCTR(blk, iv[:]).XORKeyStream(out, page)
			return nil
		}},
		{"hmac", func() error {
			mac.Reset()
			mac.Write(trans)
			mac.Sum(sum[:0])
			return nil
		}},
	}
	fns := make([]func() error, len(ops))
	for k := range ops {
		fns[k] = ops[k].op
	}
	for r := 0; r < rounds; r++ {
		v, err := interleaved(d, fns)
		if err != nil {
			return fmt.Errorf("packet: %w", err)
		}
		ns := map[string]float64{}
		for k := range ops {
			ns[ops[k].name] = v[k]
		}
		limit := ns["aes"] + ns["hmac"]
		rep.Add("packet.seal.ratio", limit/ns["seal"])
		rep.Add("packet.open.ratio", limit/ns["open"])
		rep.Add("packet.seal.mbps", mbps(ns["seal"]))
		rep.Add("packet.open.mbps", mbps(ns["open"]))
		rep.Add("packet.limit.mbps", mbps(limit))
		rep.Add("packet.limit.aes_ctr_mbps", mbps(ns["aes"]))
		rep.Add("packet.limit.hmac_mbps", mbps(ns["hmac"]))
	}
	return nil
}
