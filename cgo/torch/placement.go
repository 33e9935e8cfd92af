package torch

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
)

// placementCheck is on while a placement test runs (CheckPlacement).
var placementCheck atomic.Bool

// CheckPlacement makes every op whose tensor arguments lie on more than one
// device fail, naming the devices and the caller outside this package, until
// the returned function restores the previous setting. A CUDA kernel refuses
// such a mix, but the meta device accepts it in many ops (linear,
// index_select, embedding, cat, gather run on meta with a CPU argument), so
// a placement test on meta turns this on to fail where a GPU would.
// Transfers (To, ToDevice, CopyFrom) are exempt: crossing devices is their job.
// Each checked op costs a metadata call per argument, so this is for tests.
func CheckPlacement() (restore func()) {
	was := placementCheck.Swap(true)
	return func() { placementCheck.Store(was) }
}

// mixedDevices reports the devices of ts when they are not all one, with
// the code that called the op.
func mixedDevices(ts []*Tensor) error {
	var first Device
	seen := false
	for _, t := range ts {
		if t == nil {
			continue
		}
		d := t.Device()
		if !seen {
			first, seen = d, true
			continue
		}
		if d != first {
			return errorf("placement", "tensors on %s and %s meet in one op, called from %s", first, d, callerOutsideTorch())
		}
	}
	return nil
}

// callerOutsideTorch is file:line of the innermost caller outside this
// package's own code (its tests count as callers).
func callerOutsideTorch() string {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "github.com/msrtrain/msrtrain/cgo/torch.") || strings.HasSuffix(f.File, "_test.go") {
			return fmt.Sprintf("%s:%d", f.File, f.Line)
		}
		if !more {
			return "unknown"
		}
	}
}
