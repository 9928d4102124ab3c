package manifest_test

import (
	"regexp"
	"testing"

	"github.com/sevshim/sevshim/pkg/format/internal/formattest"
	"github.com/sevshim/sevshim/pkg/format/manifest"
)

// The fw_cfg names are defined once in Go and once in C; they must be equal.
func TestFwCfgNamesMatchHeader(t *testing.T) {
	h := formattest.Read(t, "shim/include/sevshim/formats.h")
	for macro, want := range map[string]string{
		"MANIFEST": manifest.FwCfgManifest, "BIOS": manifest.FwCfgBIOS, "VARS": manifest.FwCfgVars,
		"NONCE": manifest.FwCfgNonce,
	} {
		m := regexp.MustCompile(`#define SEVSHIM_FWCFG_` + macro + `\s+"([^"]+)"`).FindSubmatch(h)
		if m == nil {
			t.Errorf("formats.h has no SEVSHIM_FWCFG_%s", macro)
		} else if string(m[1]) != want {
			t.Errorf("SEVSHIM_FWCFG_%s is %q in formats.h, %q in Go", macro, m[1], want)
		}
	}
}
