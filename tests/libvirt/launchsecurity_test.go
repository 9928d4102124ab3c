package libvirt

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// verifier session --libvirt-xml prints the owner's <launchSecurity type='sev'> for its SEV
// host; inside a domain it validates against libvirt's own schema (virt-xml-validate). No
// SEV launch runs here: that needs /dev/sev (docs/hostctl.md).
func TestSessionLaunchSecurityXML(t *testing.T) {
	w := getWorld(t)
	if _, err := exec.LookPath("virt-xml-validate"); err != nil {
		t.Fatal("virt-xml-validate not found: run scripts/setup.sh (libvirt-clients, libxml2-utils)")
	}
	dir := t.TempDir()
	sess := filepath.Join(dir, "sess")
	r := w.cli.MustRun(t, "verifier", "session", "--chain", filepath.Join(w.Dir, "owner.chain"), "--root", filepath.Join(w.O, "certs"),
		"--policy", "0x1", "--out", sess, "--libvirt-xml", "--cbitpos", "47", "--reduced-phys-bits", "1")
	i := strings.Index(r.Stdout, "<launchSecurity")
	if i < 0 {
		t.Fatalf("no <launchSecurity> element: %s", r)
	}
	elem := r.Stdout[i:]
	godh, _ := os.ReadFile(filepath.Join(sess, "guest_godh.b64"))
	session, _ := os.ReadFile(filepath.Join(sess, "guest_session.b64"))
	for _, want := range []string{`type="sev"`, "<cbitpos>47</cbitpos>", "<reducedPhysBits>1</reducedPhysBits>", "<policy>0x0001</policy>",
		"<dhCert>" + strings.TrimSpace(string(godh)) + "</dhCert>", "<session>" + strings.TrimSpace(string(session)) + "</session>"} {
		if !strings.Contains(elem, want) {
			t.Errorf("the element lacks %s:\n%s", want, elem)
		}
	}
	// A minimal domain around it (made with libvirtxml), the element put in its place.
	d := &libvirtxml.Domain{Type: "kvm", Name: "owner-sev", Memory: &libvirtxml.DomainMemory{Value: 256, Unit: "MiB"},
		OS: &libvirtxml.DomainOS{Type: &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "q35", Type: "hvm"}}}
	doc, err := d.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	doc = strings.Replace(doc, "</domain>", elem+"</domain>", 1)
	p := filepath.Join(dir, "domain.xml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("virt-xml-validate", p, "domain").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "validates") {
		t.Fatalf("virt-xml-validate: %v: %s\n%s", err, out, doc)
	}
	var back libvirtxml.Domain
	if err := xml.Unmarshal([]byte(doc), &back); err != nil || back.LaunchSecurity == nil || back.LaunchSecurity.SEV == nil {
		t.Fatalf("libvirtxml does not read the element back as SEV: %v", err)
	}
}
