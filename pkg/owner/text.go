package owner

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	"github.com/sevshim/sevshim/pkg/format/receipt"
)

// WritePlatformText prints a platform report for humans. The last line is `platform OK` or
// `platform REFUSED`.
func WritePlatformText(w io.Writer, r *PlatformReport) {
	fmt.Fprintf(w, "chain:          %s\n", r.Chain)
	if r.ChainSHA256 != "" {
		fmt.Fprintf(w, "chain sha256:   %s\n", r.ChainSHA256)
	}
	if len(r.Certificates) > 0 {
		fmt.Fprintf(w, "certificates:   %s\n", strings.Join(r.Certificates, " "))
	}
	if r.Trust != "" {
		fmt.Fprintf(w, "trusted root:   %s\n", r.Trust)
	}
	if !r.Verified {
		if r.BrokenCert != "" {
			fmt.Fprintf(w, "malformed:      %s certificate\n", r.BrokenCert)
		}
		if r.BrokenLink != "" {
			fmt.Fprintf(w, "broken link:    %s\n", r.BrokenLink)
		}
		fmt.Fprintf(w, "platform REFUSED\n")
		return
	}
	product := r.Product
	if r.TestRoot {
		product += " (emulated platform, TEST root)"
	}
	fmt.Fprintf(w, "product:        %s\n", product)
	fmt.Fprintf(w, "API version:    %s (PDH), %s (PEK)\n", r.PDHAPI, r.PEKAPI)
	fmt.Fprintf(w, "verified links: %s\n", strings.Join(r.Links, ", "))
	fmt.Fprintf(w, "OCA key sha256: %s\n", r.OCAKey)
	fmt.Fprintf(w, "CEK key sha256: %s\n", r.CEKKey)
	fmt.Fprintf(w, "PDH key sha256: %s  <- the PDH to use for sessions with this platform\n", r.PDHKey)
	fmt.Fprintf(w, "platform OK\n")
}

// WriteSessionText prints a session report for humans.
func WriteSessionText(w io.Writer, r *SessionReport) {
	fmt.Fprintf(w, "platform:       %s, %s, PDH key sha256 %s\n", r.Platform.Chain, r.Platform.Product, r.Platform.PDHKey)
	fmt.Fprintf(w, "policy:         %s\n", r.Policy)
	fmt.Fprintf(w, "GODH cert:      %s  (QEMU sev-guest dh-cert-file)\n", r.Files.GODH)
	fmt.Fprintf(w, "session:        %s  (QEMU sev-guest session-file)\n", r.Files.Session)
	fmt.Fprintf(w, "TEK:            %s  (0600, keep it here)\n", r.Files.TEK)
	fmt.Fprintf(w, "TIK:            %s  (0600, keep it here)\n", r.Files.TIK)
	fmt.Fprintf(w, "description:    %s\n", r.Info)
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "warning:        %s\n", x)
	}
	fmt.Fprintf(w, "session written\n")
}

// WriteMeasureText prints a measurement report. The last line is `measurement OK` or
// `measurement MISMATCH`.
func WriteMeasureText(w io.Writer, r *MeasureReport) {
	fmt.Fprintf(w, "image:          %s (%s)\n", r.Image, r.ImageKind)
	fmt.Fprintf(w, "launch digest:  %s\n", r.LaunchDigest)
	fmt.Fprintf(w, "platform:       API %s build %d\n", r.API, r.Build)
	pol := "matches the session"
	if !r.PolicyOK {
		pol = fmt.Sprintf("DIFFERS from the session's %#x", r.SessionPolicy)
	}
	fmt.Fprintf(w, "policy:         %s (%s)\n", r.Policy, pol)
	fmt.Fprintf(w, "mnonce:         %s\n", r.MNonce)
	fmt.Fprintf(w, "expected:       %s\n", r.Expected)
	fmt.Fprintf(w, "measured:       %s\n", r.Measured)
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "warning:        %s\n", x)
	}
	for _, x := range r.Reasons {
		fmt.Fprintf(w, "reason:         %s\n", x)
	}
	fmt.Fprintf(w, "measurement %s\n", r.Verdict)
}

// WriteSecretText prints a secret report (after the measurement it relied on).
func WriteSecretText(w io.Writer, r *SecretReport) {
	if r.Measure != nil {
		WriteMeasureText(w, r.Measure)
	}
	for _, e := range r.Entries {
		fmt.Fprintf(w, "secret entry:   %s\n", e)
	}
	if r.ReceiptKey != "" {
		how := "from"
		if r.NewKey {
			how = "new key written (0600) to"
		}
		fmt.Fprintf(w, "receipt key:    %s (%d bytes), %s %s; the shim takes it out of the table and MACs its receipt with it\n", receipt.KeyGUID, receipt.KeySize, how, r.ReceiptKey)
	}
	fmt.Fprintf(w, "secret table:   %d bytes (secret block 0x%x, %d bytes)\n", r.TableSize, r.BlockBase, r.BlockSize)
	fmt.Fprintf(w, "packet:         %d encrypted bytes, MAC bound to the measurement\n", r.PacketSize)
	fmt.Fprintf(w, "secret written: %s\n", r.Out)
}

// jsonProblem says in words what is wrong with a JSON file, without Go's type names
// ("cannot unmarshal string into Go struct field ... of type uint32").
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return "the file is empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the JSON ends early (a truncated file?)"
	case errors.As(err, &se):
		return fmt.Sprintf("not valid JSON at byte %d: %s", se.Offset, se.Error())
	case errors.As(err, &te):
		want := "a " + te.Type.Kind().String()
		switch te.Type.Kind() {
		case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			want = fmt.Sprintf("a whole number from 0 to %d", uint64(1)<<(te.Type.Bits())-1)
		case reflect.String:
			want = "a string"
		case reflect.Ptr:
			want = "a value"
		}
		return fmt.Sprintf("%q: want %s, not a JSON %s", te.Field, want, te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
