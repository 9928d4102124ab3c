package cli

// The --json results of the builder's commands. Digests and key ids are lowercase hex.

// KeygenResult is what `builder keygen --json` prints.
type KeygenResult struct {
	Key    string `json:"key"`
	Public string `json:"public"`
	KeyID  string `json:"key_id"`
}

// BuildResult is what `builder build --json` prints.
type BuildResult struct {
	Out          string `json:"out"`
	Bytes        int    `json:"bytes"`
	Template     string `json:"template"` // a file name, or "the embedded shim template"
	Layout       string `json:"layout"`
	Signers      int    `json:"signers"`
	PolicySHA384 string `json:"policy_sha384"`
	SHA256       string `json:"sha256"`
	SHA384       string `json:"sha384"`
	LaunchDigest string `json:"launch_digest"`
}

// SignResult is what `builder sign-bios --json` prints.
type SignResult struct {
	Out           string `json:"out"`
	Layout        string `json:"layout"`
	Version       uint64 `json:"version"`
	VersionString string `json:"version_string"`
	Volumes       int    `json:"firmware_volumes"`
	ImageSHA384   string `json:"image_sha384"`
	SignerKeyID   string `json:"signer_key_id"`
}

// MeasureResult is what `builder measure --json` prints; the last two only with --tik.
type MeasureResult struct {
	Image         string `json:"image"`
	LaunchDigest  string `json:"launch_digest"`
	LaunchMeasure string `json:"launch_measure,omitempty"`
	Measurement   string `json:"measurement,omitempty"` // MEASURE || MNONCE, as measurement.json carries it (hex)
}
