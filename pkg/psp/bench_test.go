package psp

import (
	"crypto/rand"
	"testing"

	"github.com/sevshim/sevshim/pkg/sev"
)

// SEND_UPDATE_DATA through the emulator (command checks + packet wrap), 4 KiB pages.
func BenchmarkEmulatorSendUpdateData(b *testing.B) {
	a := newEmu(b, nil)
	t := newEmu(b, nil)
	pdh, _, _, _, _ := Export(a)
	own, _ := sev.NewOwnerSession(nil, pdh, 0)
	h, err := a.LaunchStart(LaunchStartRequest{DHCert: own.GODH.Marshal(), Session: own.Session.Marshal()})
	if err != nil {
		b.Fatal(err)
	}
	a.LaunchUpdateData(h, make([]byte, 16))
	Measure(a, h)
	a.LaunchFinish(h)
	c, _ := FullChain(t)
	if _, _, err := StartSend(a, h, SendStartRequest{PDH: c.PDH.Marshal(), PlatCerts: sev.MarshalCertChain(c.PEK, c.OCA, c.CEK)}); err != nil {
		b.Fatal(err)
	}
	page := make([]byte, 4096)
	rand.Read(page)
	hdr, trans := make([]byte, 52), make([]byte, 4096)
	b.SetBytes(4096)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, err := a.SendUpdateData(h, page, hdr, trans); err != nil {
			b.Fatal(err)
		}
	}
}
