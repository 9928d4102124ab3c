package benchplot

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func story() *Story {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	return &Story{Title: "256 MiB guest, 48 MiB dirty", Steps: []Step{
		{"reset -> READY", ms(900), ms(850)},
		{"export", ms(600), ms(300)},
		{"receive + load", ms(700), ms(400)},
		{"wake", ms(30), ms(25)},
		{"verify", ms(170), ms(160)},
		{"flash", ms(1000), ms(980)},
		{"hand-off", ms(5), ms(5)},
		{"OVMF", ms(9000), ms(8800)},
	}}
}

// TestWriteSVG: the picture is well-formed XML with an <svg> root, names every step, both
// paths in the legend and the totals in the title, embeds no fonts, and the same story gives
// the same bytes. The SVG is left in $SEVSHIM_BENCHPLOT_OUT when that is set (to look at it).
func TestWriteSVG(t *testing.T) {
	var a, b bytes.Buffer
	if err := WriteSVG(&a, story()); err != nil {
		t.Fatal(err)
	}
	WriteSVG(&b, story())
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two renderings of the same story differ")
	}
	d := xml.NewDecoder(bytes.NewReader(a.Bytes()))
	root := ""
	var text strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = x.Name.Local
			}
		case xml.CharData:
			text.Write(x)
			text.WriteString("\n")
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q", root)
	}
	s := text.String()
	for _, want := range []string{"reset -> READY", "export", "receive + load", "wake", "verify", "flash", "hand-off", "OVMF",
		"sevshim (hostctl export + receive)", "plain QEMU (migrate to file + -incoming)",
		"256 MiB guest, 48 MiB dirty: sevshim 12.40 s vs plain QEMU 11.52 s", "9000", "8800"} {
		if !strings.Contains(s, want) {
			t.Errorf("the SVG's text lacks %q", want)
		}
	}
	if bytes.Contains(a.Bytes(), []byte("@font-face")) {
		t.Error("fonts are embedded")
	}
	if a.Len() > 64<<10 {
		t.Errorf("SVG is %d bytes", a.Len())
	}
	if p := os.Getenv("SEVSHIM_BENCHPLOT_OUT"); p != "" {
		os.WriteFile(filepath.Clean(p), a.Bytes(), 0o644)
	}
	if err := WriteSVG(io.Discard, &Story{}); err == nil {
		t.Error("an empty story was drawn")
	}
}
