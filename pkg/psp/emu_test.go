package psp

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sevshim/sevshim/pkg/sev"
)

var (
	rootOnce sync.Once
	testRoot *TestRoot
	rootErr  error
)

func sharedRoot(t testing.TB) *TestRoot {
	rootOnce.Do(func() { testRoot, rootErr = GenerateTestRoot(4096) })
	if rootErr != nil {
		t.Fatal(rootErr)
	}
	return testRoot
}

func newEmu(t testing.TB, opts *EmulatorOptions) *Emulator {
	t.Helper()
	if opts == nil {
		opts = &EmulatorOptions{}
	}
	if opts.Root == nil && opts.RootDir == "" {
		opts.Root = sharedRoot(t)
	}
	e, err := OpenEmulator(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func wantStatus(t *testing.T, err error, s Status) {
	t.Helper()
	if !IsStatus(err, s) {
		t.Fatalf("got %v, want firmware status %v", err, s)
	}
}

func TestEmulatorIdentityAndChain(t *testing.T) {
	e := newEmu(t, nil)
	st, err := e.PlatformStatus()
	if err != nil {
		t.Fatal(err)
	}
	if st.State != StateInit || st.APIMajor != 0 || st.APIMinor != 24 || st.OwnerExternal || st.GuestCount != 0 {
		t.Fatalf("status %+v", st)
	}
	// Length queries.
	pl, cl, err := e.PDHCertExport(nil, nil)
	wantStatus(t, err, StatusInvalidLength)
	if pl != sev.CertSize || cl != sev.CertChainSize {
		t.Fatalf("query %d %d", pl, cl)
	}
	n, err := e.GetID(make([]byte, 10))
	wantStatus(t, err, StatusInvalidLength)
	if n != 64 {
		t.Fatal(n)
	}
	// Exported chain: CEK unsigned; OCA-only verification works, AMD mode refuses.
	pdh, pek, oca, cek, err := Export(e)
	if err != nil {
		t.Fatal(err)
	}
	if cek.Signed() {
		t.Fatal("exported CEK must be unsigned")
	}
	c := &sev.Chain{PDH: pdh, PEK: pek, OCA: oca, CEK: cek}
	if _, err := sev.VerifyChain(c, sev.VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "CEK is unsigned") {
		t.Fatalf("got %v", err)
	}
	if r, err := sev.VerifyChain(c, sev.VerifyOptions{AllowUnsignedCEK: true}); err != nil || !r.OCAOnly {
		t.Fatal(err)
	}
	// Full chain through the key server: verifies under the test root, not under AMD's.
	full, err := FullChain(e)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := e.Root()
	r, err := sev.VerifyChain(full, sev.VerifyOptions{Roots: append(sev.BuiltinRoots(), root)})
	if err != nil || r.Product != sev.TestRootProduct {
		t.Fatalf("%v %+v", err, r)
	}
	if _, err := sev.VerifyChain(full, sev.VerifyOptions{}); err == nil || !strings.Contains(err.Error(), "not a trusted root") {
		t.Fatalf("test root accepted as AMD: %v", err)
	}
	// Key files are private.
	for _, k := range []string{"cek", "oca", "pek", "pdh"} {
		fi, err := os.Stat(filepath.Join(e.Dir(), "keys", k+".key"))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s.key: %v %v", k, err, fi.Mode())
		}
	}
	// Persistence: reopening gives the same identity.
	id1, _ := ChipID(e)
	e.Close()
	e2, err := OpenEmulator(e.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	id2, _ := ChipID(e2)
	pdh2, _, _, _, _ := Export(e2)
	if !bytes.Equal(id1, id2) || !pdh2.SameKey(pdh) {
		t.Fatal("identity changed across reopen")
	}
	if _, err := e2.SignedCEK(make([]byte, 64)); err == nil {
		t.Fatal("key server served an unknown chip")
	}
}

func TestEmulatorRootDirShared(t *testing.T) {
	rd := t.TempDir()
	a, err := OpenEmulator(t.TempDir(), &EmulatorOptions{RootDir: rd})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenEmulator(t.TempDir(), &EmulatorOptions{RootDir: rd})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ra, _ := a.Root()
	rb, _ := b.Root()
	if !ra.ARK.Equal(rb.ARK) {
		t.Fatal("platforms with one root dir have different ARKs")
	}
	fi, err := os.Stat(filepath.Join(rd, "ark.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatal("ark.key mode")
	}
	fb, err := FullChain(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sev.VerifyChain(fb, sev.VerifyOptions{Roots: []sev.Root{ra}}); err != nil {
		t.Fatal(err)
	}
}

// launch runs the guest-owner flow against e and returns the handle and owner session.
func launch(t *testing.T, e *Emulator, policy sev.Policy, fw []byte) (Handle, *sev.OwnerSession) {
	t.Helper()
	pdh, _, _, _, err := Export(e)
	if err != nil {
		t.Fatal(err)
	}
	os, err := sev.NewOwnerSession(nil, pdh, uint32(policy))
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.LaunchStart(LaunchStartRequest{Policy: policy, DHCert: os.GODH.Marshal(), Session: os.Session.Marshal()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LaunchUpdateData(h, fw); err != nil {
		t.Fatal(err)
	}
	return h, os
}

func TestEmulatorLaunchMeasureSecret(t *testing.T) {
	e := newEmu(t, nil)
	fw := bytes.Repeat([]byte{0x90}, 64*1024)
	pol := sev.NewPolicy(sev.PolicyNoDebug, 0, 17)
	h, own := launch(t, e, pol, fw[:32*1024])
	if err := e.LaunchUpdateData(h, fw[32*1024:]); err != nil { // split: same digest
		t.Fatal(err)
	}
	wantStatus(t, e.LaunchUpdateData(h, fw[:15]), StatusInvalidLength)
	wantStatus(t, e.LaunchSecret(h, make([]byte, 52), make([]byte, 16), make([]byte, 16)), StatusInvalidGuestState)
	wantStatus(t, e.LaunchFinish(h), StatusInvalidGuestState)
	st, _ := e.PlatformStatus()
	if st.State != StateWorking || st.GuestCount != 1 {
		t.Fatalf("platform %+v", st)
	}

	n, err := e.LaunchMeasure(h, nil)
	wantStatus(t, err, StatusInvalidLength)
	if n != 48 {
		t.Fatal(n)
	}
	m, err := Measure(e, h)
	if err != nil {
		t.Fatal(err)
	}
	ld := sha256.Sum256(fw)
	if err := sev.VerifyMeasurement(m, own.Keys.TIK, st.Version(), uint32(pol), ld); err != nil {
		t.Fatal(err)
	}
	other := sha256.Sum256(fw[1:])
	if err := sev.VerifyMeasurement(m, own.Keys.TIK, st.Version(), uint32(pol), other); err == nil {
		t.Fatal("wrong firmware accepted")
	}
	wantStatus(t, e.LaunchUpdateData(h, fw[:16]), StatusInvalidGuestState)

	// Secret.
	table := &sev.SecretTable{Entries: []sev.SecretEntry{{GUID: sev.DiskPassphraseID, Data: []byte("hunter2")}}}
	plain, _ := table.Marshal()
	var iv [16]byte
	rand.Read(iv[:])
	hdr, trans, err := sev.NewTransport(own.Keys).SealSecret(plain, iv, m.Measure, st.Version())
	if err != nil {
		t.Fatal(err)
	}
	guest := make([]byte, len(trans))
	bad := hdr
	bad.MAC[0] ^= 1
	wantStatus(t, e.LaunchSecret(h, bad.Marshal(), trans, guest), StatusBadMeasurement)
	if err := e.LaunchSecret(h, hdr.Marshal(), trans, guest); err != nil {
		t.Fatal(err)
	}
	got, err := sev.ParseSecretTable(guest)
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Lookup(sev.DiskPassphraseID); string(d) != "hunter2" {
		t.Fatal("secret")
	}
	if err := e.LaunchFinish(h); err != nil {
		t.Fatal(err)
	}
	gs, err := e.GuestStatus(h)
	if err != nil || gs.State != GuestRunning || gs.Policy != pol || gs.ASID == 0 {
		t.Fatalf("%v %+v", err, gs)
	}
	// NODBG.
	wantStatus(t, e.DbgDecrypt(h, make([]byte, 16), make([]byte, 16)), StatusPolicyFailure)
	// Unknown handle.
	_, err = e.GuestStatus(99)
	wantStatus(t, err, StatusInvalidGuest)
	if err := e.Decommission(h); err != nil {
		t.Fatal(err)
	}
	st, _ = e.PlatformStatus()
	if st.State != StateInit {
		t.Fatal("platform still working")
	}
}

func TestEmulatorLaunchStartChecks(t *testing.T) {
	e := newEmu(t, &EmulatorOptions{APIMajor: 0, APIMinor: 24, Build: 3})
	pdh, _, _, _, _ := Export(e)
	own, _ := sev.NewOwnerSession(nil, pdh, 1)
	req := LaunchStartRequest{Policy: 1, DHCert: own.GODH.Marshal(), Session: own.Session.Marshal()}

	r := req
	r.Policy = 1 | sev.NewPolicy(0, 0, 30) // API minimum 0.30 > 0.24
	_, err := e.LaunchStart(r)
	wantStatus(t, err, StatusPolicyFailure)
	r = req
	r.Policy = 3 // POLICY_MAC was made for policy 1
	_, err = e.LaunchStart(r)
	wantStatus(t, err, StatusPolicyFailure)
	r = req
	s := append([]byte(nil), req.Session...)
	s[0x10] ^= 1 // WRAP_TK
	r.Session = s
	_, err = e.LaunchStart(r)
	wantStatus(t, err, StatusBadSignature)
	r = req
	r.DHCert = make([]byte, 100)
	_, err = e.LaunchStart(r)
	wantStatus(t, err, StatusInvalidCertificate)
	r = req
	r.Policy = 1 | sev.PolicyES
	_, err = e.LaunchStart(r)
	wantStatus(t, err, StatusPolicyFailure) // platform not configured for ES
	// A session wrapped for another platform's PDH.
	other := newEmu(t, nil)
	opdh, _, _, _, _ := Export(other)
	oo, _ := sev.NewOwnerSession(nil, opdh, 1)
	_, err = e.LaunchStart(LaunchStartRequest{Policy: 1, DHCert: oo.GODH.Marshal(), Session: oo.Session.Marshal()})
	wantStatus(t, err, StatusBadSignature)

	h, err := e.LaunchStart(req)
	if err != nil {
		t.Fatal(err)
	}
	// Key sharing: NOKS clear and equal policy -> allowed; NOKS -> refused.
	own2, _ := sev.NewOwnerSession(nil, pdh, 1)
	if _, err := e.LaunchStart(LaunchStartRequest{Handle: h, Policy: 1, DHCert: own2.GODH.Marshal(), Session: own2.Session.Marshal()}); err != nil {
		t.Fatal(err)
	}
	own3, _ := sev.NewOwnerSession(nil, pdh, 3)
	_, err = e.LaunchStart(LaunchStartRequest{Handle: h, Policy: 3, DHCert: own3.GODH.Marshal(), Session: own3.Session.Marshal()})
	wantStatus(t, err, StatusPolicyFailure)
	// Platform commands refused while guests exist.
	wantStatus(t, e.PEKGen(), StatusInvalidPlatformState)
	wantStatus(t, e.FactoryReset(), StatusInvalidPlatformState)
	_, err = e.PEKCSR(make([]byte, sev.CertSize))
	wantStatus(t, err, StatusInvalidPlatformState)
	if err := e.PDHGen(); err != nil { // allowed in WORKING
		t.Fatal(err)
	}
}

func TestEmulatorES(t *testing.T) {
	e := newEmu(t, &EmulatorOptions{ConfigES: true})
	pol := sev.Policy(1) | sev.PolicyES
	h, own := launch(t, e, pol, make([]byte, 4096))
	vmsa, err := os.ReadFile("../sev/testdata/sevctl/vmsa0.bin")
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.LaunchUpdateVMSA(h, vmsa[:100]), StatusInvalidLength)
	if err := e.LaunchUpdateVMSA(h, vmsa); err != nil {
		t.Fatal(err)
	}
	m, err := Measure(e, h)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := e.PlatformStatus()
	ld := sha256.Sum256(append(make([]byte, 4096), vmsa...))
	if err := sev.VerifyMeasurement(m, own.Keys.TIK, st.Version(), uint32(pol), ld); err != nil {
		t.Fatal(err)
	}
	h2, _ := launch(t, e, 1, make([]byte, 16))
	wantStatus(t, e.LaunchUpdateVMSA(h2, vmsa), StatusPolicyFailure)
}

func runningGuest(t *testing.T, e *Emulator, pol sev.Policy, mem []byte) Handle {
	t.Helper()
	h, _ := launch(t, e, pol, mem)
	if _, err := Measure(e, h); err != nil {
		t.Fatal(err)
	}
	if err := e.LaunchFinish(h); err != nil {
		t.Fatal(err)
	}
	return h
}

func sendReq(t *testing.T, target *Emulator, signed bool) SendStartRequest {
	t.Helper()
	c, err := FullChain(target)
	if err != nil {
		t.Fatal(err)
	}
	req := SendStartRequest{PDH: c.PDH.Marshal(), PlatCerts: sev.MarshalCertChain(c.PEK, c.OCA, c.CEK),
		AMDCerts: sev.MarshalAMDChain(c.ASK, c.ARK)}
	if !signed {
		_, _, _, cek, _ := Export(target)
		req.PlatCerts = sev.MarshalCertChain(c.PEK, c.OCA, cek)
	}
	return req
}

// Two emulated platforms: the owner's sends a guest to the provider's, page by page, and back.
func TestEmulatorSendReceive(t *testing.T) {
	a := newEmu(t, nil) // source
	b := newEmu(t, nil) // target
	mem := make([]byte, 16*4096)
	rand.Read(mem)
	pol := sev.Policy(1) | sev.PolicySEV
	h := runningGuest(t, a, pol, mem)

	// Length query then the real call.
	req := sendReq(t, b, true)
	_, n, err := a.SendStart(h, req, nil)
	wantStatus(t, err, StatusInvalidLength)
	if n != sev.SessionSize {
		t.Fatal(n)
	}
	gotPol, session, err := StartSend(a, h, req)
	if err != nil {
		t.Fatal(err)
	}
	if gotPol != pol {
		t.Fatal("policy")
	}
	gs, _ := a.GuestStatus(h)
	if gs.State != GuestSUpdate {
		t.Fatal(gs.State)
	}
	hl, tl, err := a.SendUpdateData(h, mem[:4096], nil, nil)
	wantStatus(t, err, StatusInvalidLength)
	if hl != 52 || tl != 4096 {
		t.Fatal(hl, tl)
	}
	type pkt struct{ hdr, trans []byte }
	var pkts []pkt
	for off := 0; off < len(mem); off += 4096 {
		hdr, trans, err := SendPage(a, h, mem[off:off+4096])
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(trans, mem[off:off+4096]) {
			t.Fatal("page not encrypted")
		}
		pkts = append(pkts, pkt{hdr, trans})
	}
	if err := a.SendFinish(h); err != nil {
		t.Fatal(err)
	}
	_, _, err = a.SendUpdateData(h, mem[:4096], make([]byte, 52), make([]byte, 4096))
	wantStatus(t, err, StatusInvalidGuestState)

	// Target side.
	srcPDH, _, _, _, _ := Export(a)
	_, err = b.ReceiveStart(ReceiveStartRequest{Policy: pol | sev.PolicyNoKeySharing, PDH: srcPDH.Marshal(), Session: session})
	wantStatus(t, err, StatusPolicyFailure) // policy differs from the session's POLICY_MAC
	_, err = b.ReceiveStart(ReceiveStartRequest{Policy: pol, PDH: mustPDH(t, b), Session: session})
	wantStatus(t, err, StatusBadSignature) // wrong source PDH
	hb, err := b.ReceiveStart(ReceiveStartRequest{Policy: pol, PDH: srcPDH.Marshal(), Session: session})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(mem))
	// A tampered packet is refused.
	tam := append([]byte(nil), pkts[0].trans...)
	tam[7] ^= 1
	wantStatus(t, b.ReceiveUpdateData(hb, pkts[0].hdr, tam, got[:4096]), StatusBadSignature)
	for i, p := range pkts {
		if err := b.ReceiveUpdateData(hb, p.hdr, p.trans, got[i*4096:(i+1)*4096]); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, mem) {
		t.Fatal("received memory differs")
	}
	if err := b.ReceiveFinish(hb); err != nil {
		t.Fatal(err)
	}
	if gs, _ := b.GuestStatus(hb); gs.State != GuestRunning || gs.Policy != pol {
		t.Fatalf("%+v", gs)
	}
	// Replay of the old packets into a new receive fails (new keys).
	// And the guest goes back: b -> a.
	gotPol, session2, err := StartSend(b, hb, sendReq(t, a, true))
	if err != nil || gotPol != pol {
		t.Fatal(err)
	}
	hdr, trans, err := SendPage(b, hb, got[:4096])
	if err != nil {
		t.Fatal(err)
	}
	bPDH, _, _, _, _ := Export(b)
	ha, err := a.ReceiveStart(ReceiveStartRequest{Policy: pol, PDH: bPDH.Marshal(), Session: session2})
	if err != nil {
		t.Fatal(err)
	}
	back := make([]byte, 4096)
	wantStatus(t, a.ReceiveUpdateData(ha, pkts[0].hdr, pkts[0].trans, back), StatusBadSignature) // old session's packet
	if err := a.ReceiveUpdateData(ha, hdr, trans, back); err != nil || !bytes.Equal(back, mem[:4096]) {
		t.Fatal(err)
	}
	if err := b.SendFinish(hb); err != nil {
		t.Fatal(err)
	}
	if err := a.ReceiveFinish(ha); err != nil {
		t.Fatal(err)
	}
}

func mustPDH(t *testing.T, e *Emulator) []byte {
	pdh, _, _, _, err := Export(e)
	if err != nil {
		t.Fatal(err)
	}
	return pdh.Marshal()
}

func TestEmulatorSendPolicy(t *testing.T) {
	a := newEmu(t, nil)
	b := newEmu(t, nil)
	// NOSEND.
	h := runningGuest(t, a, sev.PolicyNoSend, make([]byte, 16))
	_, _, err := StartSend(a, h, sendReq(t, b, true))
	wantStatus(t, err, StatusPolicyFailure)
	// Not RUNNING.
	hl, _ := launch(t, a, 0, make([]byte, 16))
	_, _, err = StartSend(a, hl, sendReq(t, b, true))
	wantStatus(t, err, StatusInvalidGuestState)
	// SEV bit with an unsigned CEK (no AMD binding) is refused; without the bit it is fine.
	hs := runningGuest(t, a, sev.PolicySEV, make([]byte, 16))
	_, _, err = StartSend(a, hs, sendReq(t, b, false))
	wantStatus(t, err, StatusBadSignature)
	hn := runningGuest(t, a, 0, make([]byte, 16))
	if _, _, err := StartSend(a, hn, sendReq(t, b, false)); err != nil {
		t.Fatal(err)
	}
	if err := a.SendCancel(hn); err != nil {
		t.Fatal(err)
	}
	if gs, _ := a.GuestStatus(hn); gs.State != GuestRunning {
		t.Fatal("cancel state")
	}
	// SEV bit with a target under an untrusted root.
	stranger, err := OpenEmulator(t.TempDir(), &EmulatorOptions{RootDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	_, _, err = StartSend(a, hs, sendReq(t, stranger, true))
	wantStatus(t, err, StatusBadSignature)
	// Tampered target PDH.
	req := sendReq(t, b, true)
	req.PDH[4] ^= 1
	_, _, err = StartSend(a, hn, req)
	wantStatus(t, err, StatusBadSignature)
	// DOMAIN: another OCA is refused.
	hd := runningGuest(t, a, sev.PolicyDomain, make([]byte, 16))
	_, _, err = StartSend(a, hd, sendReq(t, b, true))
	wantStatus(t, err, StatusPolicyFailure)
	// API minimum above the target's firmware.
	old := newEmu(t, &EmulatorOptions{APIMajor: 0, APIMinor: 17, Build: 1})
	hv := runningGuest(t, a, sev.NewPolicy(0, 0, 20), make([]byte, 16))
	_, _, err = StartSend(a, hv, sendReq(t, old, true))
	wantStatus(t, err, StatusPolicyFailure)
}

func TestEmulatorOwnership(t *testing.T) {
	e := newEmu(t, nil)
	csr := make([]byte, sev.CertSize)
	if _, err := e.PEKCSR(csr); err != nil {
		t.Fatal(err)
	}
	pek, err := sev.ParseCert(csr)
	if err != nil || pek.Signed() {
		t.Fatal("CSR must be unsigned")
	}
	// The owner's own OCA.
	ownerOCA := newEmu(t, nil)
	_, _, oca, _, _ := Export(ownerOCA)
	ocaKey, err := loadECKey(filepath.Join(ownerOCA.Dir(), "keys", "oca.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pek.Sign(0, sev.UsageOCA, sev.AlgoECDSASHA256, ocaKey, nil); err != nil {
		t.Fatal(err)
	}
	// Wrong OCA cert for the signature.
	_, _, wrongOCA, _, _ := Export(e)
	wantStatus(t, e.PEKCertImport(pek.Marshal(), wrongOCA.Marshal()), StatusBadSignature)
	if err := e.PEKCertImport(pek.Marshal(), oca.Marshal()); err != nil {
		t.Fatal(err)
	}
	st, _ := e.PlatformStatus()
	if !st.OwnerExternal {
		t.Fatal("owner flag")
	}
	pdh, npek, noca, cek, _ := Export(e)
	if !noca.SameKey(oca) {
		t.Fatal("OCA not imported")
	}
	if _, err := sev.VerifyChain(&sev.Chain{PDH: pdh, PEK: npek, OCA: noca, CEK: cek}, sev.VerifyOptions{AllowUnsignedCEK: true, TrustedOCA: oca}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.Dir(), "keys", "oca.key")); !os.IsNotExist(err) {
		t.Fatal("externally owned platform keeps an OCA key")
	}
	// PEK_GEN returns to self-owned.
	if err := e.PEKGen(); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.PlatformStatus(); st.OwnerExternal {
		t.Fatal("still external")
	}
}

func TestEmulatorGuestPersistsAcrossProcesses(t *testing.T) {
	// A second Emulator on the same directory stands in for a second process (hostctl
	// launch, then a later hostctl measure).
	e := newEmu(t, nil)
	h, own := launch(t, e, 1, make([]byte, 4096))
	e2, err := OpenEmulator(e.Dir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if err := e2.LaunchUpdateData(h, make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	m, err := Measure(e2, h)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := e.PlatformStatus()
	if err := sev.VerifyMeasurement(m, own.Keys.TIK, st.Version(), 1, sha256.Sum256(make([]byte, 8192))); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(e.guestPath(h))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatal("guest file mode")
	}
}

func TestOpen(t *testing.T) {
	t.Setenv("SEVSHIM_EMU_ROOT", t.TempDir())
	p, err := Open("emu", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if p.Kind() != "emu" {
		t.Fatal(p.Kind())
	}
	if _, err := Open("qemu", ""); err == nil {
		t.Fatal("unknown kind accepted")
	}
	if _, err := Open("emu", ""); err == nil {
		t.Fatal("emulator without state dir accepted")
	}
}

// The owner writes sevctl/QEMU-shaped files; the provider side reads them back into
// LAUNCH_START exactly as QEMU's sev-guest object would pass them to the firmware.
func TestEmulatorLaunchFromQEMUFiles(t *testing.T) {
	e := newEmu(t, nil)
	pdh, _, _, _, _ := Export(e)
	// The PDH travels base64 (query-sev-capabilities "pdh").
	pdh2, err := sev.DecodeCertBase64(sev.EncodeBase64(pdh.Marshal()))
	if err != nil {
		t.Fatal(err)
	}
	own, err := sev.NewOwnerSession(nil, pdh2, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f, err := own.WriteFiles(dir, "guest")
	if err != nil {
		t.Fatal(err)
	}
	godh, sess, err := sev.ReadLaunchFiles(f)
	if err != nil {
		t.Fatal(err)
	}
	h, err := e.LaunchStart(LaunchStartRequest{Policy: 1, DHCert: godh.Marshal(), Session: sess.Marshal()})
	if err != nil {
		t.Fatal(err)
	}
	e.LaunchUpdateData(h, make([]byte, 4096))
	m, err := Measure(e, h)
	if err != nil {
		t.Fatal(err)
	}
	tik, _ := sev.ReadKeyFile(f.TIK)
	st, _ := e.PlatformStatus()
	if err := sev.VerifyMeasurement(m, tik, st.Version(), 1, sha256.Sum256(make([]byte, 4096))); err != nil {
		t.Fatal(err)
	}
}

// TestGuestsList: Guests lists every context with its state, and DECOMMISSION removes one.
func TestGuestsList(t *testing.T) {
	e, err := OpenEmulator(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if gs, err := e.Guests(); err != nil || len(gs) != 0 {
		t.Fatalf("fresh platform: %v %v", gs, err)
	}
	h1, err := e.LaunchStart(LaunchStartRequest{Policy: sev.PolicyNoDebug})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := e.LaunchStart(LaunchStartRequest{Policy: sev.PolicyNoDebug})
	if err != nil {
		t.Fatal(err)
	}
	gs, err := e.Guests()
	if err != nil || len(gs) != 2 || gs[0].Handle != h1 || gs[1].Handle != h2 || gs[0].State != GuestLUpdate || gs[0].Policy != sev.PolicyNoDebug {
		t.Fatalf("two launches: %+v %v", gs, err)
	}
	if err := e.Decommission(h1); err != nil {
		t.Fatal(err)
	}
	if gs, err = e.Guests(); err != nil || len(gs) != 1 || gs[0].Handle != h2 {
		t.Fatalf("after DECOMMISSION of %d: %+v %v", h1, gs, err)
	}
}
