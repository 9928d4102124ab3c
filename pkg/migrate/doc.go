// Package migrate reads and rebuilds QEMU 7.2 precopy migration streams (q35, TCG,
// default migration capabilities) so that hostctl can turn every RAM page of a stopped
// guest into its own encrypted packet on export and rebuild the exact stream on receive.
// The byte layout it relies on (QEMU 7.2's migration/savevm.c and migration/ram.c formats,
// proven on this project's streams) is described below and in docs/formats.md section 8.
//
// # Streaming API
//
// Parse(r, h) reads the stream once, front to back, and calls the Handler in stream
// order. It holds one 4 KiB page at a time plus the device state (bounded by
// MaxDeviceState; 80-230 KB on real q35 guests), never the whole stream:
//
//	Header(raw)              magic "QEVM", version 3, configuration section, verbatim
//	RAMBlocks(id, blocks)    the "ram" START section: section id, MEM_SIZE list (idstr, size)
//	RAMSection(end)          a PART (end=false) or END (end=true) section of "ram" begins
//	Page(p)                  one page record: block index, offset, kind, fill byte or 4 KiB data
//	Device(chunk)            the bytes after the "ram" END section, verbatim, in order
//	Done()                   the input ended and every check passed
//
// Writer implements Handler and writes the same bytes back: Parse(r, NewWriter(w))
// reproduces r byte for byte. The EOS records, section footers, the MEM_SIZE word and
// idstr/CONTINUE encodings are derived, not stored: a section is closed (EOS + 0x7E +
// id) when the next one starts or the device state begins, and a page record carries its
// block's idstr exactly when Page.Continue is false. A Writer applies the parser's rules,
// so it cannot emit a stream Parse would refuse (e.g. CONTINUE after a block change).
//
// # What Parse accepts
//
// Everything else is refused with a *FormatError giving the byte position, the part of
// the stream and the problem; streams that end early also match ErrTruncated.
//
//   - magic QEVM, version 3; a configuration section (0x07) with a printable machine
//     name and only the target-page-bits (= 12) or uuid subsections;
//   - then the "ram" START section (instance 0, version 4): MEM_SIZE word, blocks
//     (idstr, page-aligned length) until the total is reached, EOS, footer;
//   - then PART sections and one END section of "ram" (same section id), each a list of
//     records ended by EOS and closed by a footer. A record is ZERO (fill byte) or PAGE
//     (4096 bytes), optionally CONTINUE (idstr omitted, same block as the previous
//     record, also across sections). Offsets must lie inside the named block. No other
//     flag (FULL, XBZRLE, HOOK, COMPRESS_PAGE, MEM_SIZE outside START, unknown bits), no
//     COMMAND, FULL or second START section before the END;
//   - every page of every block exactly once (a stopped guest). Options.AllowResend
//     accepts repeated pages (a running source; the later record wins). A missing page
//     is always refused: the destination would keep its own content there;
//   - after the END footer, device state that starts with a FULL section and ends with
//     EOF (0x00), VMDESCRIPTION (0x06), a u32 length and that much JSON. Device payloads
//     have no length prefix, so CheckDeviceState uses the JSON's device list: each
//     device must appear in order as a FULL header (name, instance, version) directly
//     after the previous section's footer, and the last footer must sit right before EOF.
//     The payload bytes themselves stay opaque.
//
// QEMU does not checksum page contents and neither can this package: a flipped byte in
// a data page is a valid stream. Integrity of the pages is the job of the layer above
// (SEV SEND_UPDATE_DATA packets with their HMAC).
//
// # Compact page stream
//
// For the guest package a stream splits into a Skeleton (everything except the bytes of
// data pages) plus the data pages in stream order. Recorder builds a Skeleton from Parse
// and hands each data page to a callback (export wraps it into a SEND_UPDATE_DATA
// packet); Skeleton.Replay drives a Writer, asking for each data page in turn (receive
// supplies the decrypted page). Skeleton.Check validates everything but the page
// contents (block list, section order, CONTINUE use, offsets, every page exactly once,
// device state) so receive can refuse a damaged package before any QEMU starts. The
// Skeleton is:
//
//	Header        the raw header bytes (23 bytes for pc-q35-7.2)
//	RAMSectionID  u32, the source's id for "ram" (2 on every capture so far)
//	Blocks        [(idstr, size)] in MEM_SIZE order; page entries refer to them by index
//	Entries       one 8-byte Entry per section boundary and per page record
//	Devices       the device state, verbatim
//
// An Entry is encoded (Entry.AppendBinary / DecodeEntry) in 8 bytes:
//
//	byte 0     kind in bits 0-6: 1 data page, 2 zero page, 3 PART begins, 4 END begins;
//	           bit 7: CONTINUE (the record omitted the idstr)
//	byte 1     fill byte (zero pages only, else 0)
//	bytes 2-3  block index, big-endian u16 (pages only, else 0)
//	bytes 4-7  page number inside the block (offset / 4096), big-endian u32 (pages only)
//
// Zero pages are thus 8 bytes with no payload; data pages are 8 bytes plus their 4096
// bytes (or the packet that carries them), in the same order as their entries. A
// 512 MiB guest at the OVMF shell has about 132,000 entries (1 MiB) and 10,900 data
// pages. How the Skeleton is framed in a file is up to the package format, not this
// package.
//
// Guest-physical addresses: an offset is inside its block. For "pc.ram" below the q35
// low-memory limit (0x80000000 or 0xB0000000) it equals the GPA; SEV packets should be
// bound to (block idstr, offset), which is what the stream addresses.
package migrate
