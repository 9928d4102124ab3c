package cli

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// libvirtXML is session's --libvirt-xml: the session as the <launchSecurity type='sev'>
// element of a libvirt domain on the owner's SEV host (docs/verifier.md, docs/hostctl.md).
type libvirtXML struct {
	on                       bool
	cbitpos, reducedPhysBits uint
}

func addLibvirtXMLFlags(c *cobra.Command) *libvirtXML {
	f := &libvirtXML{}
	c.Flags().BoolVar(&f.on, "libvirt-xml", false, "also print the session as libvirt's <launchSecurity type='sev'> element (needs --cbitpos and --reduced-phys-bits)")
	c.Flags().UintVar(&f.cbitpos, "cbitpos", 0, "with --libvirt-xml: the SEV host's C-bit position `N` (virsh domcapabilities: <sev><cbitpos>)")
	c.Flags().UintVar(&f.reducedPhysBits, "reduced-phys-bits", 0, "with --libvirt-xml: the SEV host's reduced physical address bits `N` (virsh domcapabilities: <reducedPhysBits>)")
	return f
}

// check refuses --libvirt-xml without the host's values, or with --json.
func (f *libvirtXML) check(asJSON bool) error {
	if !f.on {
		return nil
	}
	if f.cbitpos == 0 || f.reducedPhysBits == 0 {
		return errors.New("--libvirt-xml needs --cbitpos N and --reduced-phys-bits N of the SEV host (virsh domcapabilities)")
	}
	if asJSON {
		return errors.New("--libvirt-xml prints XML: not with --json")
	}
	return nil
}

// launchSecuritySEV is libvirt's <launchSecurity type='sev'> (libvirt's domain schema,
// launchSecuritySEV). Its own struct: libvirtxml v1.12008.0 spells the session element
// "sesion", which libvirt's schema rejects.
type launchSecuritySEV struct {
	XMLName         xml.Name `xml:"launchSecurity"`
	Type            string   `xml:"type,attr"`
	CBitPos         uint     `xml:"cbitpos"`
	ReducedPhysBits uint     `xml:"reducedPhysBits"`
	Policy          string   `xml:"policy"`
	DHCert          string   `xml:"dhCert"`
	Session         string   `xml:"session"`
}

// print writes the element for the session NAME in dir (its GODH and session files).
func (f *libvirtXML) print(w io.Writer, dir, name string, policy uint32) error {
	if !f.on {
		return nil
	}
	read := func(suffix string) (string, error) {
		b, err := os.ReadFile(filepath.Join(dir, name+suffix))
		return strings.TrimSpace(string(b)), err
	}
	dh, err := read("_godh.b64")
	if err != nil {
		return err
	}
	sess, err := read("_session.b64")
	if err != nil {
		return err
	}
	b, err := xml.MarshalIndent(launchSecuritySEV{Type: "sev", CBitPos: f.cbitpos, ReducedPhysBits: f.reducedPhysBits,
		Policy: fmt.Sprintf("0x%04x", policy), DHCert: dh, Session: sess}, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
