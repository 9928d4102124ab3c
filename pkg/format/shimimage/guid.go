package shimimage

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// GUID is a GUID in EFI byte order, exactly as stored in firmware images: the first three
// fields are little-endian, the last eight bytes are stored as written.
type GUID [16]byte

// ParseGUID parses the canonical text form "96b582de-1fb2-45f7-baea-a366c55a082d" (any case).
func ParseGUID(s string) (GUID, error) {
	var g GUID
	parts := strings.Split(s, "-")
	if len(parts) != 5 || len(parts[0]) != 8 || len(parts[1]) != 4 || len(parts[2]) != 4 ||
		len(parts[3]) != 4 || len(parts[4]) != 12 {
		return g, fmt.Errorf("guid %q: want the form xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", s)
	}
	raw, err := hex.DecodeString(strings.Join(parts, ""))
	if err != nil {
		return g, fmt.Errorf("guid %q: %v", s, err)
	}
	binary.LittleEndian.PutUint32(g[0:], binary.BigEndian.Uint32(raw[0:]))
	binary.LittleEndian.PutUint16(g[4:], binary.BigEndian.Uint16(raw[4:]))
	binary.LittleEndian.PutUint16(g[6:], binary.BigEndian.Uint16(raw[6:]))
	copy(g[8:], raw[8:])
	return g, nil
}

// MustParseGUID is ParseGUID for constants; it panics on a malformed string.
func MustParseGUID(s string) GUID {
	g, err := ParseGUID(s)
	if err != nil {
		panic(err)
	}
	return g
}

// String returns the canonical lower-case text form.
func (g GUID) String() string {
	return fmt.Sprintf("%08x-%04x-%04x-%x-%x",
		binary.LittleEndian.Uint32(g[0:]), binary.LittleEndian.Uint16(g[4:]),
		binary.LittleEndian.Uint16(g[6:]), g[8:10], g[10:16])
}

// MarshalText makes GUIDs print as strings in JSON.
func (g GUID) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// UnmarshalText parses the canonical text form.
func (g *GUID) UnmarshalText(b []byte) error {
	x, err := ParseGUID(string(b))
	if err != nil {
		return err
	}
	*g = x
	return nil
}

// Well-known footer-table GUIDs (docs/formats.md section 4, and OVMF's own entries).
var (
	FooterTableGUID  = MustParseGUID("96b582de-1fb2-45f7-baea-a366c55a082d")
	SEVESResetGUID   = MustParseGUID("00f771de-1a7e-4fcb-890e-68c77e2fb44e")
	SEVSecretGUID    = MustParseGUID("4c2eb361-7d9b-4cc3-8081-127c90d3d294")
	PolicyGUID       = MustParseGUID("0ac6472c-d1f2-4ae6-8da8-f00f54648a10")
	InfoGUID         = MustParseGUID("138ba441-15dc-4aec-aaad-0397d4fdd549")
	SEVHashTableGUID = MustParseGUID("7255371f-3a3b-4b04-927b-1da6efa8d454") // OVMF: kernel hashes
	SEVMetadataGUID  = MustParseGUID("dc886566-984a-4798-a75e-5585a7bf67cc") // OVMF: SNP metadata
	TDXMetadataGUID  = MustParseGUID("e47a6535-984a-4798-865e-4685a7bf8ec2") // OVMF: TDX metadata
)

// GUIDName names the GUIDs this package knows, for inspect output; "" otherwise.
func GUIDName(g GUID) string {
	switch g {
	case FooterTableGUID:
		return "footer table"
	case SEVESResetGUID:
		return "SEV-ES reset block"
	case SEVSecretGUID:
		return "SEV secret block"
	case PolicyGUID:
		return "sevshim policy"
	case InfoGUID:
		return "sevshim info"
	case SEVHashTableGUID:
		return "SEV hash table"
	case SEVMetadataGUID:
		return "SEV metadata"
	case TDXMetadataGUID:
		return "TDX metadata"
	}
	return ""
}
