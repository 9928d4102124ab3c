package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/sevshim/sevshim/pkg/cli/version"
	"github.com/sevshim/sevshim/pkg/firmware"
	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/sev"
)

// Without --template and without $SEVSHIM_SHIM_FD, build uses the template embedded in the
// program: it works in a directory that holds nothing but the policy and its keys.
func TestBuildEmbeddedTemplate(t *testing.T) {
	inEnv(t)
	t.Setenv(TemplateEnv, "")
	os.Remove("template.fd")
	out, e, c := run(t, "build", "--policy", "policy.yaml", "--out", "shim.fd", "--json")
	if c != 0 {
		t.Fatalf("build with the embedded template: %s", e)
	}
	var r BuildResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if r.Template != firmware.Name || r.Out != "shim.fd" || r.Signers != 2 {
		t.Errorf("result %+v", r)
	}
	img, err := os.ReadFile("shim.fd")
	if err != nil {
		t.Fatal(err)
	}
	tpl, _ := firmware.Template()
	want, err := shimimage.EmbedPolicy(tpl, mustPolicy(t, img))
	if err != nil || !bytes.Equal(img, want) {
		t.Fatalf("image is not the embedded template plus the policy (%v)", err)
	}
	ld := sev.LaunchDigest(img)
	if r.LaunchDigest != hexs(ld[:]) || r.Bytes != len(img) {
		t.Errorf("launch digest %s, want %x", r.LaunchDigest, ld)
	}
}

func mustPolicy(t *testing.T, img []byte) []byte {
	t.Helper()
	enc, _, err := shimimage.ExtractPolicy(img)
	if err != nil {
		t.Fatal(err)
	}
	return enc
}

// $SEVSHIM_SHIM_FD is honoured when --template is absent, and --template wins over it.
func TestBuildTemplateEnv(t *testing.T) {
	inEnv(t)
	t.Setenv(TemplateEnv, "template.fd")
	out, e, c := run(t, "build", "--policy", "policy.yaml", "--out", "env.fd", "--json")
	if c != 0 {
		t.Fatal(e)
	}
	var r BuildResult
	json.Unmarshal([]byte(out), &r)
	if r.Template != "template.fd" {
		t.Errorf("template %q, want template.fd", r.Template)
	}
	flagged, _, _ := run(t, "build", "--policy", "policy.yaml", "--template", "template.fd", "--out", "flag.fd")
	a, _ := os.ReadFile("env.fd")
	b, _ := os.ReadFile("flag.fd")
	if !bytes.Equal(a, b) || flagged == "" {
		t.Error("$SEVSHIM_SHIM_FD and --template of the same file gave different images")
	}
	t.Setenv(TemplateEnv, "missing.fd")
	if _, e, c := run(t, "build", "--policy", "policy.yaml", "--out", "x.fd"); c != 1 ||
		!strings.Contains(e, "shim template ($SEVSHIM_SHIM_FD)") || !strings.Contains(e, "missing.fd") {
		t.Errorf("missing $SEVSHIM_SHIM_FD: %d %s", c, e)
	}
	if _, e, c := run(t, "build", "--policy", "policy.yaml", "--template", "template.fd", "--out", "y.fd"); c != 0 {
		t.Errorf("--template must win over a broken $SEVSHIM_SHIM_FD: %s", e)
	}
}

// --json results of keygen, sign-bios and measure carry what the text says.
func TestResultJSON(t *testing.T) {
	inEnv(t)
	out, e, c := run(t, "keygen", "--out", "k", "--json")
	if c != 0 {
		t.Fatal(e)
	}
	var k KeygenResult
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.Key != "k.key" || k.Public != "k.pub" || len(k.KeyID) != 96 {
		t.Errorf("keygen --json: %v %q", err, out)
	}
	fd := ovmfCode(t)
	out, e, c = run(t, "sign-bios", "--key", "signer-a.pem", "--version", "5", "--version-string", "v5", "--out", "v5.bundle", "--json", fd)
	if c != 0 {
		t.Fatal(e)
	}
	var s SignResult
	if err := json.Unmarshal([]byte(out), &s); err != nil || s.Out != "v5.bundle" || s.Version != 5 || s.VersionString != "v5" ||
		s.Layout != "ovmf-4m" || len(s.ImageSHA384) != 96 || len(s.SignerKeyID) != 96 || s.Volumes == 0 {
		t.Errorf("sign-bios --json: %v %q", err, out)
	}
	run(t, "build", "--policy", "policy.yaml", "--template", "template.fd", "--out", "shim.fd")
	os.WriteFile("tik.hex", []byte("66320db73158a35a255d051758e95ed4\n"), 0o600)
	text, _, _ := run(t, "measure", "--image", "shim.fd", "--tik", "tik.hex", "--api", "0.18", "--build", "15", "--policy", "0", "--mnonce", "4fbe0bedbad6c86ae8f68971d103e554")
	out, e, c = run(t, "measure", "--image", "shim.fd", "--tik", "tik.hex", "--api", "0.18", "--build", "15", "--policy", "0", "--mnonce", "4fbe0bedbad6c86ae8f68971d103e554", "--json")
	if c != 0 {
		t.Fatal(e)
	}
	var m MeasureResult
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"launch digest: " + m.LaunchDigest, "launch measure: " + m.LaunchMeasure, "(MEASURE||MNONCE): " + m.Measurement} {
		if !strings.Contains(text, v+"\n") {
			t.Errorf("text output lacks %q:\n%s", v, text)
		}
	}
	out, _, _ = run(t, "measure", "--image", "shim.fd", "--json")
	m = MeasureResult{}
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.LaunchDigest == "" || m.LaunchMeasure != "" {
		t.Errorf("measure --json without --tik: %v %q", err, out)
	}
}

// --version names the tool, the commit and the embedded template's digest.
func TestVersion(t *testing.T) {
	out, e, c := run(t, "--version")
	if c != 0 {
		t.Fatal(e)
	}
	if out != version.Get().String("builder") || !strings.Contains(out, "shim template sha256: "+firmware.Digest()+"\n") {
		t.Errorf("--version: %q", out)
	}
}

// Every builder command that reports a result takes --json.
func TestResultCommandsTakeJSON(t *testing.T) {
	for _, name := range []string{"keygen", "build", "sign-bios", "inspect", "measure"} {
		c, _, err := NewRoot().Find([]string{name})
		if err != nil || c.Flags().Lookup("json") == nil {
			t.Errorf("builder %s has no --json (%v)", name, err)
		}
	}
}
