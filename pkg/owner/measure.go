package owner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/sevshim/sevshim/pkg/format/shimimage"
	"github.com/sevshim/sevshim/pkg/sev"
)

// MeasurementFile is W/measurement.json as `hostctl launch` writes it, with libvirt's
// launch-security keys (virDomainGetLaunchSecurityInfo). Every key is required; unknown
// keys are ignored (libvirt has more, e.g. for SEV-SNP).
type MeasurementFile struct {
	Measurement *string `json:"sev-measurement"` // base64(MEASURE[32] || MNONCE[16])
	APIMajor    *uint8  `json:"sev-api-major"`
	APIMinor    *uint8  `json:"sev-api-minor"`
	BuildID     *uint8  `json:"sev-build-id"`
	Policy      *uint32 `json:"sev-policy"`
}

// Measurement is a parsed measurement file.
type Measurement struct {
	Path    string
	M       *sev.Measurement
	Version sev.PlatformVersion
	Policy  sev.Policy
}

// ParseMeasurementFile parses the JSON of a measurement file strictly (all five keys,
// 48-byte measurement, numbers in range).
func ParseMeasurementFile(path string, b []byte) (*Measurement, error) {
	var f MeasurementFile
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("%s: not a measurement file (hostctl launch writes W/measurement.json): %s", path, jsonProblem(err))
	}
	if d.More() {
		return nil, fmt.Errorf("%s: trailing data after the JSON object", path)
	}
	var missing []string
	for _, k := range []struct {
		ok   bool
		name string
	}{{f.Measurement != nil, "sev-measurement"}, {f.APIMajor != nil, "sev-api-major"}, {f.APIMinor != nil, "sev-api-minor"},
		{f.BuildID != nil, "sev-build-id"}, {f.Policy != nil, "sev-policy"}} {
		if !k.ok {
			missing = append(missing, k.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: missing %q (hostctl launch writes sev-measurement, sev-api-major, sev-api-minor, sev-build-id, sev-policy)", path, missing)
	}
	m, err := sev.DecodeMeasurementBase64([]byte(*f.Measurement))
	if err != nil {
		return nil, fmt.Errorf("%s: sev-measurement: %w", path, err)
	}
	return &Measurement{Path: path, M: m, Policy: sev.Policy(*f.Policy),
		Version: sev.PlatformVersion{APIMajor: *f.APIMajor, APIMinor: *f.APIMinor, Build: *f.BuildID}}, nil
}

// LoadMeasurementFile reads and parses a measurement file.
func LoadMeasurementFile(path string) (*Measurement, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseMeasurementFile(path, b)
}

// Verdicts.
const (
	VerdictOK       = "OK"
	VerdictMismatch = "MISMATCH"
)

// MeasureReport is what `verifier measure` prints (JSON keys are stable).
type MeasureReport struct {
	Image         string   `json:"image"`
	ImageSHA256   string   `json:"image_sha256"`
	ImageKind     string   `json:"image_kind"`
	LaunchDigest  string   `json:"launch_digest"`
	API           string   `json:"api_version"`
	Build         uint8    `json:"build_id"`
	Policy        string   `json:"policy"`
	PolicyValue   uint32   `json:"policy_value"`
	SessionPolicy uint32   `json:"session_policy"`
	PolicyOK      bool     `json:"policy_ok"`
	MNonce        string   `json:"mnonce"`
	Expected      string   `json:"expected_measure"`
	Measured      string   `json:"measured_measure"`
	MeasureOK     bool     `json:"measure_ok"`
	Verdict       string   `json:"verdict"`
	Reasons       []string `json:"reasons,omitempty"`
	Warnings      []string `json:"warnings,omitempty"`

	expected [32]byte
}

// OK reports whether the launch measured exactly the expected image under the session.
func (r *MeasureReport) OK() bool { return r.Verdict == VerdictOK }

// ErrMismatch is returned (wrapped) when the measurement or the policy does not match.
var ErrMismatch = errors.New("measurement MISMATCH")

// CheckMeasurement recomputes the expected LAUNCH_MEASURE from the image's launch digest
// (sev.LaunchDigest, the one place it is computed), the session's TIK, and the API
// version, build and policy reported in the measurement file (they are covered by the HMAC, so
// a host that lies about them fails the check), compares it with the measured value, and
// checks that the measured policy is the session's. The error wraps ErrMismatch on a
// mismatch; the report is always returned.
func CheckMeasurement(s *Session, m *Measurement, imagePath string, image []byte) (*MeasureReport, error) {
	ld := sev.LaunchDigest(image)
	sum := sha256.Sum256(image)
	r := &MeasureReport{Image: imagePath, ImageSHA256: hex.EncodeToString(sum[:]), LaunchDigest: hex.EncodeToString(ld[:]),
		API: fmt.Sprintf("%d.%d", m.Version.APIMajor, m.Version.APIMinor), Build: m.Version.Build,
		Policy: m.Policy.String(), PolicyValue: uint32(m.Policy), SessionPolicy: s.Info.Policy,
		MNonce: hex.EncodeToString(m.M.MNonce[:]), Measured: hex.EncodeToString(m.M.Measure[:])}
	if in, err := shimimage.Info(image); err != nil {
		r.ImageKind = "not a sevshim image"
		r.Warnings = append(r.Warnings, fmt.Sprintf("%s is not a sevshim image (%v); measuring its bytes anyway", imagePath, err))
	} else {
		r.ImageKind = "sevshim image, layout " + in.LayoutName
	}
	r.expected = sev.ComputeMeasure(s.Keys.TIK, m.Version, uint32(m.Policy), ld, m.M.MNonce)
	r.Expected = hex.EncodeToString(r.expected[:])
	r.MeasureOK = sev.VerifyMeasurement(m.M, s.Keys.TIK, m.Version, uint32(m.Policy), ld) == nil
	r.PolicyOK = uint32(m.Policy) == s.Info.Policy
	if !r.MeasureOK {
		r.Reasons = append(r.Reasons, "the measured value differs from the one expected for this image under this session's TIK: the guest's firmware bytes, the platform or the session differ from what was expected")
	}
	if !r.PolicyOK {
		r.Reasons = append(r.Reasons, fmt.Sprintf("the measured policy %#x is not the session's policy %#x", uint32(m.Policy), s.Info.Policy))
	}
	if r.MeasureOK && r.PolicyOK {
		r.Verdict = VerdictOK
		return r, nil
	}
	r.Verdict = VerdictMismatch
	return r, fmt.Errorf("%w: %s (expected %s, measured %s)", ErrMismatch, joinReasons(r.Reasons), r.Expected, r.Measured)
}

func joinReasons(rs []string) string {
	var b bytes.Buffer
	for i, x := range rs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(x)
	}
	return b.String()
}
