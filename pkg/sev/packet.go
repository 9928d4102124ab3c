package sev

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
)

// PacketHeaderSize is the size of the packet header (sev_hdr_buf) shared by LAUNCH_SECRET,
// SEND_UPDATE_* and RECEIVE_UPDATE_*.
const PacketHeaderSize = 0x34

// FlagCompressed is header FLAGS bit 0. The compression algorithm is not public: this
// package refuses compressed packets.
const FlagCompressed = 1

// MAC context bytes.
const (
	macCtxSecret    = 0x01 // LAUNCH_SECRET
	macCtxTransport = 0x02 // SEND_UPDATE_* / RECEIVE_UPDATE_*
)

// MaxPacketData bounds one transport packet's payload (a guest page, as KVM requires for
// SEND/RECEIVE_UPDATE_DATA) and, for LAUNCH_SECRET, the kernel's 16 KiB blob limit.
const (
	MaxTransportData = 4096
	MaxSecretData    = 0x4000
)

// PacketHeader is FLAGS u32 || IV[16] || MAC[32].
type PacketHeader struct {
	Flags uint32
	IV    [16]byte
	MAC   [32]byte
}

// ParsePacketHeader parses exactly 52 bytes; reserved flag bits must be zero.
func ParsePacketHeader(b []byte) (*PacketHeader, error) {
	if len(b) != PacketHeaderSize {
		return nil, fmt.Errorf("packet header: %d bytes, want %d", len(b), PacketHeaderSize)
	}
	h := &PacketHeader{Flags: binary.LittleEndian.Uint32(b)}
	if h.Flags&^FlagCompressed != 0 {
		return nil, fmt.Errorf("packet header: reserved flag bits set (flags %#x)", h.Flags)
	}
	copy(h.IV[:], b[4:])
	copy(h.MAC[:], b[20:])
	return h, nil
}

// Marshal returns the 52-byte encoding.
func (h *PacketHeader) Marshal() []byte {
	b := make([]byte, 0, PacketHeaderSize)
	b = le32(b, h.Flags)
	b = append(b, h.IV[:]...)
	return append(b, h.MAC[:]...)
}

// Errors of packet opening.
var (
	ErrPacketMAC        = errors.New("packet: MAC does not verify (wrong TIK, or header or data corrupted)")
	ErrPacketCompressed = errors.New("packet: COMPRESSED flag set; the compression algorithm is not public and is not supported")
)

// Transport seals and opens packets under one guest's TEK/TIK. It keeps the AES key schedule
// and the keyed HMAC state, so per-packet cost is one AES-CTR pass and one SHA-256 pass. Not
// safe for concurrent use.
type Transport struct {
	block cipher.Block
	mac   hash.Hash
	// Scratch owned by the Transport, so that a packet allocates only its CTR stream: the
	// MAC prefix, the MAC output and the IV handed to the stream (a local array would escape
	// through the interfaces).
	scr [64]byte
	sum [sha256.Size]byte
	iv  [16]byte
}

// NewTransport makes a Transport for keys.
func NewTransport(keys TransportKeys) *Transport {
	blk, err := aes.NewCipher(keys.TEK[:])
	if err != nil {
		panic(err) // 16-byte key never fails
	}
	return &Transport{block: blk, mac: hmac.New(sha256.New, keys.TIK[:])}
}

func (t *Transport) computeMAC(ctx byte, h *PacketHeader, guestLen int, trans []byte, measure *[32]byte) [32]byte {
	t.mac.Reset()
	b := t.scr[:0]
	b = append(b, ctx)
	b = le32(b, h.Flags)
	b = append(b, h.IV[:]...)
	b = le32(b, uint32(guestLen))
	b = le32(b, uint32(len(trans)))
	t.mac.Write(b)
	t.mac.Write(trans)
	if measure != nil {
		t.mac.Write(measure[:])
	}
	t.mac.Sum(t.sum[:0])
	return t.sum
}

// ctr XORs AES-128-CTR(TEK, iv) into dst from src: the packet encryption of LAUNCH_SECRET and
// SEND/RECEIVE_UPDATE_DATA (SEV API 55766, SEND_UPDATE_DATA).
func (t *Transport) ctr(dst, src []byte, iv *[16]byte) {
	t.iv = *iv
	cipher.NewCTR(t.block, t.iv[:]).XORKeyStream(dst, src)
}

// Seal encrypts plaintext into trans (len(trans) must equal len(plaintext); they may be the
// same slice) and returns the SEND_UPDATE_DATA header for iv.
func (t *Transport) Seal(trans, plaintext []byte, iv [16]byte) (PacketHeader, error) {
	if len(trans) != len(plaintext) {
		return PacketHeader{}, errors.New("packet: output and input lengths differ")
	}
	if len(plaintext) == 0 || len(plaintext) > MaxTransportData {
		return PacketHeader{}, fmt.Errorf("packet: %d data bytes, want 1..%d (one page)", len(plaintext), MaxTransportData)
	}
	h := PacketHeader{IV: iv}
	t.ctr(trans, plaintext, &iv)
	h.MAC = t.computeMAC(macCtxTransport, &h, len(plaintext), trans, nil)
	return h, nil
}

// Open verifies a RECEIVE_UPDATE_DATA packet and decrypts trans into plain (same length; may
// be the same slice). guestLen is the GUEST_LENGTH the command carries.
func (t *Transport) Open(plain []byte, h *PacketHeader, trans []byte, guestLen int) error {
	if h.Flags&FlagCompressed != 0 {
		return ErrPacketCompressed
	}
	if len(trans) == 0 || len(trans) > MaxTransportData {
		return fmt.Errorf("packet: %d data bytes, want 1..%d (one page)", len(trans), MaxTransportData)
	}
	if guestLen != len(trans) || len(plain) != len(trans) {
		return fmt.Errorf("packet: guest length %d, data length %d and buffer %d must be equal (uncompressed)", guestLen, len(trans), len(plain))
	}
	mac := t.computeMAC(macCtxTransport, h, guestLen, trans, nil)
	if !hmac.Equal(mac[:], h.MAC[:]) {
		return ErrPacketMAC
	}
	t.ctr(plain, trans, &h.IV)
	return nil
}

// SealSecret builds a LAUNCH_SECRET packet: TRANS = AES-128-CTR(TEK, IV, secret) and
// MAC = HMAC(TIK, 0x01 || FLAGS || IV || GUEST_LEN || TRANS_LEN || TRANS || MEASURE) (the
// MEASURE term only for API >= 0.17).
func (t *Transport) SealSecret(secret []byte, iv [16]byte, measure [32]byte, v PlatformVersion) (PacketHeader, []byte, error) {
	if len(secret) == 0 || len(secret) > MaxSecretData {
		return PacketHeader{}, nil, fmt.Errorf("launch secret: %d bytes, want 1..%d", len(secret), MaxSecretData)
	}
	h := PacketHeader{IV: iv}
	trans := make([]byte, len(secret))
	t.ctr(trans, secret, &iv)
	h.MAC = t.computeMAC(macCtxSecret, &h, len(secret), trans, measureTerm(measure, v))
	return h, trans, nil
}

// OpenSecret verifies and decrypts a LAUNCH_SECRET packet (the firmware side).
func (t *Transport) OpenSecret(h *PacketHeader, trans []byte, guestLen int, measure [32]byte, v PlatformVersion) ([]byte, error) {
	if h.Flags&FlagCompressed != 0 {
		return nil, ErrPacketCompressed
	}
	if len(trans) == 0 || len(trans) > MaxSecretData {
		return nil, fmt.Errorf("launch secret: %d bytes, want 1..%d", len(trans), MaxSecretData)
	}
	if guestLen != len(trans) {
		return nil, fmt.Errorf("launch secret: guest length %d differs from data length %d (uncompressed)", guestLen, len(trans))
	}
	mac := t.computeMAC(macCtxSecret, h, guestLen, trans, measureTerm(measure, v))
	if !hmac.Equal(mac[:], h.MAC[:]) {
		return nil, ErrPacketMAC
	}
	plain := make([]byte, len(trans))
	t.ctr(plain, trans, &h.IV)
	return plain, nil
}

func measureTerm(m [32]byte, v PlatformVersion) *[32]byte {
	if v.AtLeast(0, 17) {
		return &m
	}
	return nil
}
