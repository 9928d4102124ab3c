package host

import (
	"context"
	"time"

	"github.com/sevshim/sevshim/pkg/format/receipt"
	"github.com/sevshim/sevshim/pkg/vmm"
)

// receiptWait bounds the wait for the receipt line once the verdict line is there: the shim
// prints it right after `SEVSHIM ERROR ...` and right before `SEVSHIM HANDOFF`.
const receiptWait = 10 * time.Second

// waitReceipt returns the shim's receipt line (`SEVSHIM RECEIPT <hex>` or `SEVSHIM RECEIPT
// none`), or "" if none appeared in time (a shim without receipts). The provider only records
// and passes on this line: it holds no key and cannot check or forge it (docs/formats.md
// section 9).
func waitReceipt(ctx context.Context, vm vmm.VM) string {
	line, _, err := waitLine(ctx, vm, vm.Debugcon(), receiptWait, receipt.LineRegexp())
	if err != nil {
		return ""
	}
	return line
}
