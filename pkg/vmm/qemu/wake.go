package qemu

import (
	"context"

	"github.com/sevshim/sevshim/pkg/vmm"
)

// The wake-up of the shim is backend-neutral (pkg/vmm); these names keep this package's
// callers unchanged.
type Wake = vmm.Wake

var (
	DefaultWake = vmm.DefaultWake
	ErrNoWake   = vmm.ErrNoWake
)

// WakeShim is vmm.WakeShim.
func WakeShim(ctx context.Context, w Wake, inject func(context.Context) error, answered func() (bool, error)) (int, error) {
	return vmm.WakeShim(ctx, w, inject, answered)
}

// IsShimAnswer is vmm.IsShimAnswer.
func IsShimAnswer(line string) bool { return vmm.IsShimAnswer(line) }
