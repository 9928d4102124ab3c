package manifest

// The fw_cfg files through which the host hands a bundle to the shim (docs/formats.md
// section 5; shim/include/sevshim/formats.h SEVSHIM_FWCFG_*, kept equal by a test).
const (
	FwCfgManifest = "opt/org.sevshim/manifest" // the 352-byte manifest
	FwCfgBIOS     = "opt/org.sevshim/bios"     // the BIOS image
	FwCfgVars     = "opt/org.sevshim/vars"     // optional: the VM's var store for pflash1
	FwCfgNonce    = "opt/org.sevshim/nonce"    // optional: the owner's 32-byte receipt nonce (section 9)
)
