package psp

import (
	"crypto/rand"
	"errors"

	"github.com/sevshim/sevshim/pkg/sev"
)

var (
	_ PSP       = (*Emulator)(nil)
	_ KeyServer = (*Emulator)(nil)
)

// trustedRoots are the roots this emulated firmware accepts for the SEV policy bit: AMD's
// real ones and its own test root.
func (e *Emulator) trustedRoots() []sev.Root {
	rs := sev.BuiltinRoots()
	if r, err := e.Root(); err == nil {
		rs = append(rs, r)
	}
	return rs
}

// SendStart implements Guest: validates the target platform, then wraps fresh TEK/TIK for
// the target's PDH (Z = our PDH private x target PDH public). RUNNING -> SUPDATE.
func (e *Emulator) SendStart(h Handle, req SendStartRequest, session []byte) (sev.Policy, int, error) {
	const cmd = "SEND_START"
	var pol sev.Policy
	err := e.guestOp(cmd, h, []GuestState{GuestRunning}, func(p *emuPlatform, g *emuGuest) error {
		pol = sev.Policy(g.Policy)
		if pol.Has(sev.PolicyNoSend) {
			return fwErr(cmd, StatusPolicyFailure, "guest %d policy has NOSEND", h)
		}
		if len(session) < sev.SessionSize {
			return fwErr(cmd, StatusInvalidLength, "session buffer %d bytes, need %d", len(session), sev.SessionSize)
		}
		pdh, err := sev.ParseCert(req.PDH)
		if err != nil {
			return fwErr(cmd, StatusInvalidCertificate, "target PDH: %v", err)
		}
		pek, oca, cek, err := sev.ParseCertChain(req.PlatCerts)
		if err != nil {
			return fwErr(cmd, StatusInvalidCertificate, "target platform certificates: %v", err)
		}
		chain := &sev.Chain{PDH: pdh, PEK: pek, OCA: oca, CEK: cek}
		opts := sev.VerifyOptions{Roots: e.trustedRoots()}
		if pol.Has(sev.PolicySEV) {
			if chain.ASK, chain.ARK, err = sev.ParseAMDChain(req.AMDCerts); err != nil {
				return fwErr(cmd, StatusInvalidCertificate, "policy bit SEV needs the target's ASK || ARK: %v", err)
			}
		} else {
			// Only PDH <- PEK <- {OCA, CEK} is checked; the CEK's ASK signature is not needed.
			uns := *cek
			uns.Sig = [2]sev.Signature{{Usage: sev.UsageInvalid}, {Usage: sev.UsageInvalid}}
			chain.CEK = &uns
			opts.AllowUnsignedCEK = true
		}
		if _, err := sev.VerifyChain(chain, opts); err != nil {
			return fwErr(cmd, StatusBadSignature, "target %v", err)
		}
		if pol.Has(sev.PolicyDomain) {
			own, err := e.cert("oca")
			if err != nil {
				return err
			}
			if !own.SameKey(oca) {
				return fwErr(cmd, StatusPolicyFailure, "policy bit DOMAIN: target platform has another OCA (another owner domain)")
			}
		}
		if !pol.AllowsPlatform(sev.PlatformVersion{APIMajor: pdh.APIMajor, APIMinor: pdh.APIMinor}) {
			maj, min := pol.MinAPI()
			return fwErr(cmd, StatusPolicyFailure, "target firmware API %d.%d is below the policy minimum %d.%d", pdh.APIMajor, pdh.APIMinor, maj, min)
		}
		peer, err := pdh.ECDHPublicKey()
		if err != nil {
			return fwErr(cmd, StatusInvalidCertificate, "target PDH: %v", err)
		}
		pdhKey, err := loadECKey(e.path("keys", "pdh.key"))
		if err != nil {
			return err
		}
		priv, err := pdhKey.ECDH()
		if err != nil {
			return err
		}
		z, err := sev.SharedSecret(priv, peer)
		if err != nil {
			return fwErr(cmd, StatusInvalidCertificate, "%v", err)
		}
		keys, err := sev.NewTransportKeys(nil)
		if err != nil {
			return err
		}
		s, err := sev.NewSession(nil, z, keys, uint32(pol))
		if err != nil {
			return err
		}
		copy(session, s.Marshal())
		g.setKeys(keys)
		g.State = GuestSUpdate
		return e.saveGuest(g)
	})
	return pol, sev.SessionSize, err
}

// hot loads a guest context in state under the lock and caches it with its Transport.
// Called without e.mu held.
func (e *Emulator) hot(cmd string, h Handle, state GuestState) (*hotGuest, error) {
	var hg *hotGuest
	err := e.guestOpLocked(cmd, h, state, func(g *emuGuest) {
		hg = &hotGuest{g: *g, tr: sev.NewTransport(g.keys())}
		e.cache[h] = hg
	})
	return hg, err
}

func (e *Emulator) guestOpLocked(cmd string, h Handle, state GuestState, f func(g *emuGuest)) error {
	return e.guestOp(cmd, h, []GuestState{state}, func(p *emuPlatform, g *emuGuest) error {
		if !g.HasKeys {
			return fwErr(cmd, StatusInvalidGuestState, "guest %d has no transport keys", h)
		}
		f(g)
		return nil
	})
}

// SendUpdateData implements Guest: TRANS = AES-128-CTR(TEK, fresh IV, guest) and the 0x02
// MAC under TIK. guest is at most one page. Length query: hdr shorter than 52 or trans
// shorter than guest.
func (e *Emulator) SendUpdateData(h Handle, guest, hdr, trans []byte) (int, int, error) {
	const cmd = "SEND_UPDATE_DATA"
	if len(guest) == 0 || len(guest) > sev.MaxTransportData {
		return sev.PacketHeaderSize, len(guest), fwErr(cmd, StatusInvalidLength, "guest length %d, want 1..4096 (one page)", len(guest))
	}
	if len(hdr) < sev.PacketHeaderSize || len(trans) < len(guest) {
		return sev.PacketHeaderSize, len(guest), fwErr(cmd, StatusInvalidLength, "buffers %d/%d bytes, need %d/%d", len(hdr), len(trans), sev.PacketHeaderSize, len(guest))
	}
	e.mu.Lock()
	hg, ok := e.cache[h]
	e.mu.Unlock()
	if !ok || hg.g.State != GuestSUpdate {
		var err error
		if hg, err = e.hot(cmd, h, GuestSUpdate); err != nil {
			return 0, 0, err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var iv [16]byte
	rand.Read(iv[:])
	ph, err := hg.tr.Seal(trans[:len(guest)], guest, iv)
	if err != nil {
		return 0, 0, fwErr(cmd, StatusInvalidLength, "%v", err)
	}
	copy(hdr, ph.Marshal())
	return sev.PacketHeaderSize, len(guest), nil
}

// SendFinish implements Guest: SUPDATE -> SENT, keys wiped.
func (e *Emulator) SendFinish(h Handle) error {
	return e.guestOp("SEND_FINISH", h, []GuestState{GuestSUpdate}, func(p *emuPlatform, g *emuGuest) error {
		g.wipe()
		g.State = GuestSent
		return e.saveGuest(g)
	})
}

// SendCancel implements Guest: SUPDATE -> RUNNING, keys wiped (a later SEND_START may retry).
func (e *Emulator) SendCancel(h Handle) error {
	return e.guestOp("SEND_CANCEL", h, []GuestState{GuestSUpdate}, func(p *emuPlatform, g *emuGuest) error {
		g.wipe()
		g.State = GuestRunning
		return e.saveGuest(g)
	})
}

// ReceiveStart implements Guest: Z = our PDH private x source PDH public; unwrap the session,
// check POLICY_MAC over the policy given and the policy's API minimum. New guest in RUPDATE.
func (e *Emulator) ReceiveStart(req ReceiveStartRequest) (Handle, error) {
	const cmd = "RECEIVE_START"
	var h Handle
	err := e.withLock(func(p *emuPlatform) error {
		if err := e.checkPolicy(cmd, p, req.Policy); err != nil {
			return err
		}
		if req.PDH == nil || req.Session == nil {
			return fwErr(cmd, StatusInvalidParam, "source PDH and session are required")
		}
		vek, err := e.shareOrNew(cmd, req.Handle, req.Policy)
		if err != nil {
			return err
		}
		keys, err := e.unwrapSession(cmd, req.PDH, req.Session, req.Policy)
		if err != nil {
			return err
		}
		g := e.newGuest(p, GuestRUpdate, req.Policy, vek)
		g.setKeys(keys)
		g.Received = true
		if err := e.savePlatform(p); err != nil {
			return err
		}
		h = Handle(g.Handle)
		return e.saveGuest(g)
	})
	return h, err
}

// ReceiveUpdateData implements Guest: verifies the packet MAC and decrypts into guest.
func (e *Emulator) ReceiveUpdateData(h Handle, hdr, trans, guest []byte) error {
	const cmd = "RECEIVE_UPDATE_DATA"
	ph, err := sev.ParsePacketHeader(hdr)
	if err != nil {
		return fwErr(cmd, StatusInvalidParam, "%v", err)
	}
	e.mu.Lock()
	hg, ok := e.cache[h]
	e.mu.Unlock()
	if !ok || hg.g.State != GuestRUpdate {
		if hg, err = e.hot(cmd, h, GuestRUpdate); err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	err = hg.tr.Open(guest, ph, trans, len(guest))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sev.ErrPacketMAC):
		return fwErr(cmd, StatusBadSignature, "%v", err)
	case errors.Is(err, sev.ErrPacketCompressed):
		return fwErr(cmd, StatusUnsupported, "%v", err)
	}
	return fwErr(cmd, StatusInvalidLength, "%v", err)
}

// ReceiveFinish implements Guest: RUPDATE -> RUNNING, keys wiped.
func (e *Emulator) ReceiveFinish(h Handle) error {
	return e.guestOp("RECEIVE_FINISH", h, []GuestState{GuestRUpdate}, func(p *emuPlatform, g *emuGuest) error {
		g.wipe()
		g.State = GuestRunning
		return e.saveGuest(g)
	})
}
