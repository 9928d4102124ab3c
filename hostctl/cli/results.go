package cli

import (
	"github.com/sevshim/sevshim/pkg/cli/command"
	"github.com/sevshim/sevshim/pkg/host"
)

// The --json results of hostctl's commands. The text output stays the default; each JSON
// object carries the same facts. Digests are lowercase hex.

// LaunchJSON is what `hostctl launch --json` prints.
type LaunchJSON struct {
	Work        string `json:"work"`
	QEMUPid     int    `json:"qemu_pid"`
	Handle      uint32 `json:"guest_handle"`
	Measurement string `json:"measurement_file"`
}

// LaunchFinishJSON is what `hostctl launch-finish --json` prints.
type LaunchFinishJSON struct {
	Work   string `json:"work"`
	Ready  bool   `json:"ready"`
	Secret string `json:"secret,omitempty"` // the secret.json injected, if any
}

// ExportJSON is what `hostctl export --json` prints.
type ExportJSON struct {
	Out         string `json:"out"`
	Bytes       int64  `json:"bytes"`
	DataPages   uint64 `json:"data_pages"`
	ZeroPages   uint64 `json:"zero_pages"`
	Records     uint64 `json:"records"`
	StreamBytes int64  `json:"stream_bytes"`
	ElapsedMS   int64  `json:"elapsed_ms"`
}

// ReceiveJSON is what `hostctl receive --json` prints: the shim's verdict, also on a refusal
// (exit status 3). Code and CodeName are set for a refusal with a known code.
type ReceiveJSON struct {
	Accepted bool   `json:"accepted"`
	Version  uint64 `json:"version,omitempty"`
	Signer   string `json:"signer,omitempty"`
	Code     string `json:"code,omitempty"`      // "E034"
	CodeName string `json:"code_name,omitempty"` // "version-below-floor"
	Line     string `json:"line,omitempty"`      // the shim's console line
	Shell    bool   `json:"shell"`               // OVMF's UEFI shell was seen (--wait shell)
	WakeNMIs int    `json:"wake_nmis"`
	QEMUPid  int    `json:"qemu_pid"` // 0 once QEMU B stopped
	Work     string `json:"work"`
	// Receipt is the shim's `SEVSHIM RECEIPT` line (hex body and MAC, or "none"); the owner
	// checks it with `verifier receipt`.
	Receipt  string      `json:"receipt,omitempty"`
	Timeline []host.Mark `json:"timeline,omitempty"` // --timeline: the steps, in order
}

func receiveJSON(v *host.Verdict, work string) ReceiveJSON {
	r := ReceiveJSON{Accepted: v.Accepted, Line: v.Line, Shell: v.Shell, WakeNMIs: v.WakeNMIs, QEMUPid: v.Pid, Work: work,
		Receipt: v.Receipt, Timeline: v.Timeline}
	if v.Accepted {
		r.Version, r.Signer = v.Version, v.Signer
	} else if v.Code != 0 {
		r.Code, r.CodeName = v.Code.ID(), v.Code.Name()
	}
	return r
}

// PlatformExportJSON is what `hostctl platform export --json` prints.
type PlatformExportJSON struct {
	Out       string `json:"out"`
	PDHSHA256 string `json:"pdh_key_sha256"`
	CEKSigned bool   `json:"cek_signed"` // false: fetch the ASK-signed CEK from AMD's key server
	RootOut   string `json:"root_out,omitempty"`
}

// StopJSON is what `hostctl stop --json` prints; QEMUPid is 0 when nothing was running.
type StopJSON struct {
	Work    string `json:"work"`
	QEMUPid int    `json:"qemu_pid"`
}

// AttestJSON is what `hostctl attest --json` prints; the VM keeps running (QEMUPid).
type AttestJSON struct {
	Out           string   `json:"out"`
	PCR           uint     `json:"pcr"`
	Banks         []string `json:"banks"`
	Nonce         string   `json:"nonce"`
	CocoSecret    bool     `json:"coco_secret"` // /sys/kernel/security/secrets/coco exists in the guest
	EventLogBytes int      `json:"event_log_bytes"`
	EventLog      string   `json:"event_log,omitempty"` // --event-log: where it went
	QEMUPid       int      `json:"qemu_pid"`
	Receipt       string   `json:"receipt,omitempty"` // the shim's receipt line from receive
}

// TPMQuoteJSON is what `hostctl tpm-quote --json` prints; QEMUPid is the QEMU B it ended (0 if
// it was already gone).
type TPMQuoteJSON struct {
	Out     string   `json:"out"`
	PCR     uint     `json:"pcr"`
	Banks   []string `json:"banks"`
	Nonce   string   `json:"nonce"`
	QEMUPid int      `json:"qemu_pid"`
}

var writeJSON = command.WriteJSON
