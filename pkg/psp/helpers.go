package psp

import (
	"fmt"

	"github.com/sevshim/sevshim/pkg/sev"
)

// Export runs PDH_CERT_EXPORT with a length query first and parses the result.
func Export(p Platform) (pdh *sev.Cert, pek, oca, cek *sev.Cert, err error) {
	pl, cl, err := p.PDHCertExport(nil, nil)
	if err != nil && !IsStatus(err, StatusInvalidLength) {
		return nil, nil, nil, nil, err
	}
	pb, cb := make([]byte, pl), make([]byte, cl)
	if _, _, err := p.PDHCertExport(pb, cb); err != nil {
		return nil, nil, nil, nil, err
	}
	if pdh, err = sev.ParseCert(pb); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("psp: exported PDH: %w", err)
	}
	if pek, oca, cek, err = sev.ParseCertChain(cb); err != nil {
		return nil, nil, nil, nil, fmt.Errorf("psp: exported chain: %w", err)
	}
	return pdh, pek, oca, cek, nil
}

// ChipID runs GET_ID with a length query first.
func ChipID(p Platform) ([]byte, error) {
	n, err := p.GetID(nil)
	if err != nil && !IsStatus(err, StatusInvalidLength) {
		return nil, err
	}
	b := make([]byte, n)
	n, err = p.GetID(b)
	if err != nil {
		return nil, err
	}
	return b[:n], nil
}

// Measure runs LAUNCH_MEASURE with a length query first.
func Measure(g Guest, h Handle) (*sev.Measurement, error) {
	n, err := g.LaunchMeasure(h, nil)
	if err != nil && !IsStatus(err, StatusInvalidLength) {
		return nil, err
	}
	b := make([]byte, n)
	if n, err = g.LaunchMeasure(h, b); err != nil {
		return nil, err
	}
	return sev.ParseMeasurement(b[:n])
}

// StartSend runs SEND_START with a length query first; it returns the policy and session.
func StartSend(g Guest, h Handle, req SendStartRequest) (sev.Policy, []byte, error) {
	_, n, err := g.SendStart(h, req, nil)
	if err != nil && !IsStatus(err, StatusInvalidLength) {
		return 0, nil, err
	}
	s := make([]byte, n)
	pol, n, err := g.SendStart(h, req, s)
	if err != nil {
		return 0, nil, err
	}
	return pol, s[:n], nil
}

// SendPage encrypts one page of guest memory; it returns the packet header and data.
func SendPage(g Guest, h Handle, page []byte) (hdr, trans []byte, err error) {
	hdr = make([]byte, sev.PacketHeaderSize)
	trans = make([]byte, len(page))
	hl, tl, err := g.SendUpdateData(h, page, hdr, trans)
	if err != nil {
		return nil, nil, err
	}
	return hdr[:hl], trans[:tl], nil
}

// FullChain exports the platform chain and, if the backend is a KeyServer, replaces the
// unsigned CEK with the ASK-signed one and appends ASK || ARK.
func FullChain(p PSP) (*sev.Chain, error) {
	pdh, pek, oca, cek, err := Export(p)
	if err != nil {
		return nil, err
	}
	c := &sev.Chain{PDH: pdh, PEK: pek, OCA: oca, CEK: cek}
	ks, ok := p.(KeyServer)
	if !ok {
		return c, nil
	}
	id, err := ChipID(p)
	if err != nil {
		return nil, err
	}
	sc, err := ks.SignedCEK(id)
	if err != nil {
		return nil, err
	}
	if c.CEK, err = sev.ParseCert(sc); err != nil {
		return nil, fmt.Errorf("psp: signed CEK: %w", err)
	}
	aa, err := ks.AMDChain()
	if err != nil {
		return nil, err
	}
	if c.ASK, c.ARK, err = sev.ParseAMDChain(aa); err != nil {
		return nil, err
	}
	return c, nil
}
