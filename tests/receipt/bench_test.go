package receipt

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/tests/harness"
)

// BenchmarkReceiptCost prints what the receipt adds on the resume path under TCG, from console
// timestamps (bounds at the resolution of the pipe reads; printed, never asserted):
// WAKE->LOADED holds the nonce read, FLASHED->SECRET the HMAC and the wipes, SECRET->HANDOFF
// the 705-byte receipt line. "key" runs with a receipt key, "nokey" without
// (no HMAC). SEVSHIM_SHIM_FD=<older shim.fd> gives the figures of a shim without receipts.
//
//	go test -run '^$' -bench ReceiptCost -benchtime 5x ./tests/receipt/
func BenchmarkReceiptCost(b *testing.B) {
	for _, withKey := range []bool{true, false} {
		name := map[bool]string{true: "key", false: "nokey"}[withKey]
		b.Run(name, func(b *testing.B) {
			f := getChainFixture(b)
			var wake, flash, tail []time.Duration
			for i := 0; i < b.N; i++ {
				o := newOwner(b, receipt.KeySize)
				secret := o.table
				if !withKey {
					secret = o.withoutKey
				}
				vm := startChain(b, f, chainRun{manifest: "testbios-v7", secret: secret, nonce: make([]byte, receipt.NonceSize)})
				dbg := vm.Debugcon()
				if _, err := dbg.WaitString(context.Background(), "SEVSHIM HANDOFF", stepTO); err != nil {
					b.Fatal(err)
				}
				lt := func(p string) time.Time { return harness.LineTime(b, dbg, p) }
				wake = append(wake, lt("SEVSHIM LOADED").Sub(lt("SEVSHIM WAKE")))
				flash = append(flash, lt("SEVSHIM SECRET").Sub(lt("SEVSHIM FLASHED")))
				tail = append(tail, lt("SEVSHIM HANDOFF").Sub(lt("SEVSHIM SECRET")))
				vm.Close()
			}
			b.ReportMetric(float64(median(wake).Microseconds())/1000, "ms-wake-loaded")
			b.ReportMetric(float64(median(flash).Microseconds())/1000, "ms-flashed-secret")
			b.ReportMetric(float64(median(tail).Microseconds())/1000, "ms-secret-handoff")
		})
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
