// Package attest is the verifier's TPM side of sevshim's measured boot (docs/tpm.md): it reads the
// PCR the shim extended (docs/formats.md section 7) from a TPM — every active bank — plus a
// quote over it signed by a fresh attestation key, and checks both against tpmevent.Replay of
// the event the shim must have recorded for an accepted bundle.
//
// Transport: any transport.TPM (go-tpm). Against swtpm, DialSwtpm installs a data channel
// through swtpm's control socket once the QEMU that held it is gone (docs/tpm.md explains why
// a host tool cannot talk to the TPM of a running QEMU).
//
// Trust: the attestation key here is created fresh in the endorsement hierarchy and trusted
// as is (swtpm has no EK certificate chain in these tests). On a real platform the AK must be
// certified (EK certificate, TPM2_Certify / credential activation) before its quotes mean
// anything; Verify checks the quote's signature and contents, not who made the key.
package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"math/big"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/sevshim/sevshim/pkg/format/tpmevent"
)

// Bank names a PCR bank by its TPM algorithm and Go hash.
type Bank struct {
	Alg  tpm2.TPMAlgID
	Hash crypto.Hash
}

var knownBanks = []Bank{
	{tpm2.TPMAlgSHA1, crypto.SHA1},
	{tpm2.TPMAlgSHA256, crypto.SHA256},
	{tpm2.TPMAlgSHA384, crypto.SHA384},
	{tpm2.TPMAlgSHA512, crypto.SHA512},
}

// Evidence is what Read collected.
type Evidence struct {
	PCR    uint
	Values map[crypto.Hash][]byte // PCR value per active bank
	Nonce  []byte
	// Quote over PCR in the SHA-256 bank, signed by AK (ECDSA P-256, SHA-256).
	Quoted    []byte // TPMS_ATTEST as signed
	SigR      []byte
	SigS      []byte
	AK        *ecdsa.PublicKey
	QuoteBank tpm2.TPMAlgID
}

// ActiveBanks returns the PCR banks that have at least one PCR allocated.
func ActiveBanks(t transport.TPM) ([]Bank, error) {
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, Property: 0, PropertyCount: 1}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("attest: GetCapability(PCRs): %w", err)
	}
	sel, err := rsp.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return nil, fmt.Errorf("attest: GetCapability(PCRs): %w", err)
	}
	var out []Bank
	for _, s := range sel.PCRSelections {
		active := false
		for _, b := range s.PCRSelect {
			active = active || b != 0
		}
		if !active {
			continue
		}
		for _, k := range knownBanks {
			if k.Alg == s.Hash {
				out = append(out, k)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("attest: the TPM reports no active PCR bank it shares with this tool")
	}
	return out, nil
}

// ReadPCR reads one PCR of one bank.
func ReadPCR(t transport.TPM, b Bank, pcr uint) ([]byte, error) {
	rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
		{Hash: b.Alg, PCRSelect: tpm2.PCClientCompatible.PCRs(pcr)},
	}}}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("attest: PCR_Read(%v, %d): %w", b.Hash, pcr, err)
	}
	if len(rsp.PCRValues.Digests) != 1 || len(rsp.PCRValues.Digests[0].Buffer) != b.Hash.Size() {
		return nil, fmt.Errorf("attest: PCR_Read(%v, %d): %d digests returned", b.Hash, pcr, len(rsp.PCRValues.Digests))
	}
	return rsp.PCRValues.Digests[0].Buffer, nil
}

// akTemplate: restricted ECDSA P-256 signing key (an attestation key).
var akTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgECC,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true,
		Restricted: true, SignEncrypt: true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
		Scheme: tpm2.TPMTECCScheme{
			Scheme:  tpm2.TPMAlgECDSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		CurveID: tpm2.TPMECCNistP256,
	}),
}

// Read collects the value of pcr in every active bank and a quote over it (SHA-256 bank)
// with the caller's nonce, signed by a fresh primary AK (flushed afterwards).
func Read(t transport.TPM, pcr uint, nonce []byte) (*Evidence, error) {
	banks, err := ActiveBanks(t)
	if err != nil {
		return nil, err
	}
	ev := &Evidence{PCR: pcr, Values: map[crypto.Hash][]byte{}, Nonce: nonce, QuoteBank: tpm2.TPMAlgSHA256}
	for _, b := range banks {
		v, err := ReadPCR(t, b, pcr)
		if err != nil {
			return nil, err
		}
		ev.Values[b.Hash] = v
	}
	if _, ok := ev.Values[crypto.SHA256]; !ok {
		return nil, fmt.Errorf("attest: the TPM has no active SHA-256 bank to quote")
	}
	cp, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHEndorsement, InPublic: tpm2.New2B(akTemplate)}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("attest: CreatePrimary(AK): %w", err)
	}
	defer tpm2.FlushContext{FlushHandle: cp.ObjectHandle}.Execute(t)
	pub, err := cp.OutPublic.Contents()
	if err != nil {
		return nil, err
	}
	parms, err := pub.Parameters.ECCDetail()
	if err != nil {
		return nil, err
	}
	point, err := pub.Unique.ECC()
	if err != nil {
		return nil, err
	}
	if ev.AK, err = tpm2.ECDSAPub(parms, point); err != nil {
		return nil, err
	}
	q, err := tpm2.Quote{
		SignHandle:     tpm2.NamedHandle{Handle: cp.ObjectHandle, Name: cp.Name},
		QualifyingData: tpm2.TPM2BData{Buffer: nonce},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{
			{Hash: tpm2.TPMAlgSHA256, PCRSelect: tpm2.PCClientCompatible.PCRs(pcr)},
		}},
	}.Execute(t)
	if err != nil {
		return nil, fmt.Errorf("attest: Quote: %w", err)
	}
	ev.Quoted = q.Quoted.Bytes()
	sig, err := q.Signature.Signature.ECDSA()
	if err != nil {
		return nil, fmt.Errorf("attest: quote signature is not ECDSA: %w", err)
	}
	ev.SigR, ev.SigS = sig.SignatureR.Buffer, sig.SignatureS.Buffer
	return ev, nil
}

// Expected returns the PCR value each bank must hold after the shim recorded event on a PCR
// that started at zero (PCRs 0-15 after TPM2_Startup(CLEAR); OVMF does not touch 8-15).
func Expected(event []byte, banks []crypto.Hash) (map[crypto.Hash][]byte, error) {
	out := map[crypto.Hash][]byte{}
	for _, h := range banks {
		v, err := tpmevent.Replay(h, nil, event)
		if err != nil {
			return nil, err
		}
		out[h] = v
	}
	return out, nil
}

// Verify checks the evidence against the event the shim must have recorded: every bank's PCR
// value equals the replay, the quote's signature verifies with the AK, the quote is of type
// QUOTE with our nonce, selects exactly that PCR in the SHA-256 bank, and its PCR digest is
// SHA-256 of the replayed SHA-256 value.
func Verify(ev *Evidence, event []byte) error {
	var hs []crypto.Hash
	for h := range ev.Values {
		hs = append(hs, h)
	}
	want, err := Expected(event, hs)
	if err != nil {
		return err
	}
	for h, v := range ev.Values {
		if !bytes.Equal(v, want[h]) {
			return fmt.Errorf("attest: PCR %d (%v) is %x, the replay of the accepted bundle gives %x", ev.PCR, h, v, want[h])
		}
	}
	if ev.AK == nil {
		return fmt.Errorf("attest: no attestation key")
	}
	d := sha256.Sum256(ev.Quoted)
	if !ecdsa.Verify(ev.AK, d[:], new(big.Int).SetBytes(ev.SigR), new(big.Int).SetBytes(ev.SigS)) {
		return fmt.Errorf("attest: the quote signature does not verify with the AK")
	}
	att, err := tpm2.Unmarshal[tpm2.TPMSAttest](ev.Quoted)
	if err != nil {
		return fmt.Errorf("attest: quote: %w", err)
	}
	if att.Magic != tpm2.TPMGeneratedValue || att.Type != tpm2.TPMSTAttestQuote {
		return fmt.Errorf("attest: quote is not a TPM-generated QUOTE structure")
	}
	if !bytes.Equal(att.ExtraData.Buffer, ev.Nonce) {
		return fmt.Errorf("attest: quote nonce %x, want %x (a replayed quote?)", att.ExtraData.Buffer, ev.Nonce)
	}
	qi, err := att.Attested.Quote()
	if err != nil {
		return err
	}
	sel := qi.PCRSelect.PCRSelections
	if len(sel) != 1 || sel[0].Hash != tpm2.TPMAlgSHA256 || !bytes.Equal(trimZero(sel[0].PCRSelect), trimZero(tpm2.PCClientCompatible.PCRs(ev.PCR))) {
		return fmt.Errorf("attest: quote selects other PCRs than SHA-256 PCR %d", ev.PCR)
	}
	pd := sha256.Sum256(want[crypto.SHA256])
	if !bytes.Equal(qi.PCRDigest.Buffer, pd[:]) {
		return fmt.Errorf("attest: quoted PCR digest %x, want %x", qi.PCRDigest.Buffer, pd[:])
	}
	return nil
}

func trimZero(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	return b
}

// PolicyDigest is SHA-384 of an encoded policy block (the value the shim measures).
func PolicyDigest(policyBlock []byte) [48]byte { return sha512.Sum384(policyBlock) }
