package qemu

// The fw_cfg names under which the sevshim shim reads a BIOS bundle (docs/formats.md
// section 5). The manifest format defines them (pkg/bios); this package takes names as
// strings and does not import it, and shimfiles_test.go checks that these are the same.
const (
	fwCfgManifest = "opt/org.sevshim/manifest"
	fwCfgBIOS     = "opt/org.sevshim/bios"
	fwCfgVars     = "opt/org.sevshim/vars"
)

// ShimFiles is the fw_cfg list that hands a BIOS bundle to the sevshim shim: the manifest,
// the image and (optionally) the var store. An empty path leaves that file out (the shim
// then refuses, or skips the vars).
func ShimFiles(manifest, image, vars string) []FwCfg {
	var fw []FwCfg
	for _, f := range []FwCfg{{Name: fwCfgManifest, File: manifest}, {Name: fwCfgBIOS, File: image}, {Name: fwCfgVars, File: vars}} {
		if f.File != "" {
			fw = append(fw, f)
		}
	}
	return fw
}
