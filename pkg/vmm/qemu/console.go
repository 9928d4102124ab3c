package qemu

import "github.com/sevshim/sevshim/pkg/vmm"

// The console types are the backend-neutral ones of pkg/vmm; these names keep the callers of
// this package (tests, the benchmark) unchanged.
type (
	Console = vmm.Console
	Line    = vmm.Line
)

// ErrConsoleClosed is vmm.ErrConsoleClosed.
var ErrConsoleClosed = vmm.ErrConsoleClosed
