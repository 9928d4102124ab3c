package agent

import (
	"fmt"
	"os"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// OpenDeviceTPM opens the kernel's TPM resource manager, TPMPath, waiting up to 5 s for the
// TPM driver to create it.
func OpenDeviceTPM() (transport.TPMCloser, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		t, err := linuxtpm.Open(TPMPath)
		if err == nil || !os.IsNotExist(err) || time.Now().After(deadline) {
			if err != nil {
				return nil, fmt.Errorf("%s: %w", TPMPath, err)
			}
			return t, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}
