package migrate

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
)

// DeviceSection is one SECTION_FULL record of the device state, located by
// CheckDeviceState. Its payload is opaque vmstate.
type DeviceSection struct {
	ID       uint32 // section id chosen by the source
	Name     string // idstr, e.g. "timer", "0000:00:1f.0/ICH9LPC"
	Instance uint32
	Version  uint32
	Offset   int // position of the 0x04 byte, relative to the start of the device state
	Len      int // header + payload + footer
}

// vmdescription is the JSON QEMU appends after EOF. Only the fields needed to find
// section boundaries are decoded.
type vmdescription struct {
	PageSize *int `json:"page_size"`
	Devices  []struct {
		Name       *string `json:"name"`
		InstanceID *uint32 `json:"instance_id"`
		Version    *uint32 `json:"version"`
	} `json:"devices"`
}

// CheckDeviceState checks the bytes that follow the "ram" END section of a QEMU 7.2
// stream: SECTION_FULL records, then EOF (0x00), then VMDESCRIPTION (0x06, u32 length,
// JSON). The payloads of the device sections have no length prefix, so their
// boundaries are found with the device list of the trailing JSON: every device the
// JSON lists must appear, in order, as a FULL section header (matching name, instance
// and version) directly preceded by the previous section's footer, and the last
// footer must sit right before EOF. Offsets in errors are relative to tail.
func CheckDeviceState(tail []byte) ([]DeviceSection, error) {
	fail := func(at int, format string, args ...any) error {
		return &FormatError{Offset: int64(at), Where: "device sections", Msg: fmt.Sprintf(format, args...)}
	}
	if len(tail) == 0 {
		return nil, &truncErr{FormatError{Where: "device sections", Msg: "the stream ends right after the RAM sections; device state, EOF and vmdescription are missing (truncated capture?)"}}
	}
	if tail[0] != markSectionFull {
		return nil, fail(0, "%s after the END section of \"ram\"; a device FULL section (0x04) must follow (non-default capabilities or a running postcopy?)", markName(tail[0]))
	}
	// Locate "00 06 len JSON" at the very end. JSON text never contains a 0x00 byte,
	// so the last position whose length field matches is the real one.
	eof := -1
	for p := len(tail) - 6; p >= 0; p-- {
		if tail[p] == markEOF && tail[p+1] == markVMDescription &&
			int64(binary.BigEndian.Uint32(tail[p+2:])) == int64(len(tail)-p-6) {
			eof = p
			break
		}
	}
	if eof < 0 {
		return nil, &truncErr{FormatError{Offset: int64(len(tail)), Where: "device sections",
			Msg: "the stream does not end with EOF + vmdescription JSON of the stated length; it was truncated or extended (suppress-vmdesc must stay off)"}}
	}
	var desc vmdescription
	if err := json.Unmarshal(tail[eof+6:], &desc); err != nil {
		return nil, fail(eof+6, "vmdescription is not valid JSON: %v", err)
	}
	if desc.PageSize == nil || *desc.PageSize != PageSize {
		return nil, fail(eof+6, "vmdescription page_size is not 4096")
	}
	if len(desc.Devices) == 0 {
		return nil, fail(eof+6, "vmdescription lists no devices")
	}
	for i, d := range desc.Devices {
		if d.Name == nil || d.InstanceID == nil || len(*d.Name) == 0 || len(*d.Name) > 255 {
			return nil, fail(eof+6, "vmdescription device %d lacks a usable name or instance_id", i)
		}
	}

	var out []DeviceSection
	pos := 0
	for i, d := range desc.Devices {
		// Header at pos: 04 u32 id str8 name u32 instance u32 version.
		hdr := 1 + 4 + 1 + len(*d.Name) + 4 + 4
		if pos+hdr > eof {
			return nil, fail(pos, "device section %d (%q) header runs past EOF", i, *d.Name)
		}
		if tail[pos] != markSectionFull {
			return nil, fail(pos, "%s where the FULL section of device %q must start", markName(tail[pos]), *d.Name)
		}
		id := binary.BigEndian.Uint32(tail[pos+1:])
		nl := int(tail[pos+5])
		name := string(tail[pos+6 : pos+6+min(nl, eof-pos-6)])
		if name != *d.Name {
			return nil, fail(pos, "device section is named %q, but the vmdescription lists %q here; QEMU would say \"Unknown savevm section\"", name, *d.Name)
		}
		inst := binary.BigEndian.Uint32(tail[pos+6+nl:])
		ver := binary.BigEndian.Uint32(tail[pos+10+nl:])
		if inst != *d.InstanceID || (d.Version != nil && ver != *d.Version) {
			return nil, fail(pos, "device section %q has instance %d version %d, the vmdescription says instance %d version %s", name, inst, ver, *d.InstanceID, optU32(d.Version))
		}
		body := pos + hdr
		var next int
		if i == len(desc.Devices)-1 {
			next = eof
			if next-5 < body || tail[next-5] != markFooter || binary.BigEndian.Uint32(tail[next-4:]) != id {
				return nil, fail(max(next-5, body), "the last device section %q is not closed by its footer (0x7E, id %d) right before EOF", name, id)
			}
		} else {
			nd := desc.Devices[i+1]
			pat := make([]byte, 0, 1+len(*nd.Name)+8)
			pat = append(pat, byte(len(*nd.Name)))
			pat = append(pat, *nd.Name...)
			pat = binary.BigEndian.AppendUint32(pat, *nd.InstanceID)
			if nd.Version != nil {
				pat = binary.BigEndian.AppendUint32(pat, *nd.Version)
			}
			next = -1
			for s := body; s < eof; {
				k := bytes.Index(tail[s:eof], pat)
				if k < 0 {
					break
				}
				h := s + k - 5 // the 0x04 of the next header
				if h-5 >= body && tail[h] == markSectionFull && tail[h-5] == markFooter &&
					binary.BigEndian.Uint32(tail[h-4:]) == id {
					next = h
					break
				}
				s += k + 1
			}
			if next < 0 {
				return nil, fail(body, "cannot find the end of device section %q (footer 0x7E id %d followed by the FULL header of %q); the device state is damaged or does not match its vmdescription", name, id, *nd.Name)
			}
		}
		out = append(out, DeviceSection{ID: id, Name: name, Instance: inst, Version: ver, Offset: pos, Len: next - pos})
		pos = next
	}
	return out, nil
}

func optU32(v *uint32) string {
	if v == nil {
		return "(none)"
	}
	return fmt.Sprint(*v)
}
