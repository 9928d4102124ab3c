package guestpkg

import (
	"errors"
	"io"

	"github.com/sevshim/sevshim/pkg/migrate"
)

// Builder is a migrate.Handler that writes a package while migrate.Parse reads the stream:
// every data page goes through Seal (SEND_UPDATE_DATA) straight into the package, so the
// plaintext page exists only for the duration of the call. Give it to migrate.Parse and
// check Parse's error; the package is complete when Parse returned nil.
type Builder struct {
	Out io.Writer
	Pkg *Header // the package header (policy, shape, sender PDH, session)
	// Seal encrypts one 4096-byte page into p (packet header and ciphertext).
	Seal func(page []byte, p *Packet) error
	// Progress, if set, is called after each page record with the pages done so far.
	Progress func(pages uint64)

	w       *Writer
	raw     []byte
	devices []byte
	pkt     Packet
	pages   uint64
	stream  *Stream
}

// Writer returns the package writer (nil before the RAM blocks were seen).
func (b *Builder) Writer() *Writer { return b.w }

// Stream returns the stream part written (nil before the RAM blocks were seen).
func (b *Builder) Stream() *Stream { return b.stream }

func (b *Builder) Header(raw []byte) error {
	b.raw = append([]byte(nil), raw...)
	return nil
}

func (b *Builder) RAMBlocks(id uint32, blocks []migrate.Block) error {
	w, err := NewWriter(b.Out, b.Pkg)
	if err != nil {
		return err
	}
	b.w = w
	b.stream = &Stream{Header: b.raw, RAMSectionID: id, Blocks: append([]migrate.Block(nil), blocks...)}
	return w.WriteStream(b.stream)
}

func (b *Builder) RAMSection(end bool) error {
	k := migrate.EntryPart
	if end {
		k = migrate.EntryEnd
	}
	return b.w.Record(migrate.Entry{Kind: k}, nil)
}

func (b *Builder) Page(p *migrate.Page) error {
	if p.Offset/migrate.PageSize > 0xFFFFFFFF || p.Block > 0xFFFF {
		return errors.New("guest package: page does not fit the compact page stream")
	}
	e := migrate.Entry{Continue: p.Continue, Block: uint16(p.Block), Page: uint32(p.Offset / migrate.PageSize)}
	var err error
	if p.Kind == migrate.PageZero {
		e.Kind, e.Fill = migrate.EntryZero, p.Fill
		err = b.w.Record(e, nil)
	} else {
		e.Kind = migrate.EntryData
		if err = b.Seal(p.Data, &b.pkt); err == nil {
			err = b.w.Record(e, &b.pkt)
		}
	}
	b.pages++
	if err == nil && b.Progress != nil {
		b.Progress(b.pages)
	}
	return err
}

func (b *Builder) Device(chunk []byte) error {
	if len(b.devices)+len(chunk) > migrate.MaxDeviceState {
		return errors.New("guest package: device state too large")
	}
	b.devices = append(b.devices, chunk...)
	return nil
}

func (b *Builder) Done() error {
	if b.w == nil {
		return errors.New("guest package: stream ended before its RAM blocks")
	}
	return b.w.Finish(b.devices)
}

var _ migrate.Handler = (*Builder)(nil)
