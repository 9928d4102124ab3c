package cli

import (
	"fmt"
	"io"
	"strconv"

	"github.com/sevshim/sevshim/pkg/format/policy"
)

// ExitRefused is the exit code of `builder inspect` when the shim would refuse the bundle (or
// its signature fails): the same code `hostctl receive` exits with on a shim refusal.
const ExitRefused = 3

// writeSigners lists the policy's signers with the names the YAML gave them (names are not
// encoded into the shim: this is the one place they are shown).
func writeSigners(w io.Writer, p *policy.Policy, info *policy.YAMLInfo) {
	for i, s := range p.Signers {
		name := "(no name)"
		if info != nil && i < len(info.SignerNames) && info.SignerNames[i] != "" {
			name = strconv.Quote(info.SignerNames[i])
		}
		id := s.KeyID()
		fmt.Fprintf(w, "signer [%d] %s: key id %x, min version %d\n", i, name, id, s.MinVersion)
	}
}
