package torch

/*
#include <stdlib.h>
#include "msr.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"strings"
	"unsafe"
)

// ScriptModule is a TorchScript module (libtorch's torch::jit::Module):
// one built here from named tensors and TorchScript source and saved in the
// format torch.jit.load reads, or one loaded from such a file to be run.
//
// Names cannot hold dots in TorchScript, so a tensor registered under a
// dotted path lives in submodules named by the path's parts: registering
// "backbone.layers.0.weight" makes submodules backbone, layers and 0, and
// the module's state dict (in Python, libtorch or StateDict) has the key
// "backbone.layers.0.weight", as the checkpoint the tensor came from.
// TorchScript source reaches it as self.backbone.layers, then
// getattr(…, "0").weight for a part that is not an identifier (ScriptRef
// writes the expression).
//
// A ScriptModule is not safe for concurrent use; call it from the torch
// goroutine, as every torch call. Close frees it.
type ScriptModule struct {
	h C.msr_script
}

// ScriptSlot says how a registered tensor is kept: as a parameter or a buffer.
type ScriptSlot int

// The slots.
const (
	ScriptParameter ScriptSlot = C.MSR_SCRIPT_PARAMETER
	ScriptBuffer    ScriptSlot = C.MSR_SCRIPT_BUFFER
)

// NewScriptModule creates an empty module whose class is named name
// (letters, digits, underscores).
func NewScriptModule(name string) (*ScriptModule, error) {
	cname := C.CString(name)
	defer C.free(unsafe.Pointer(cname))
	var h C.msr_script
	if err := check("script module "+name, C.msr_script_new(cname, &h)); err != nil {
		return nil, err
	}
	return newScriptModule(h), nil
}

func newScriptModule(h C.msr_script) *ScriptModule {
	m := &ScriptModule{h: h}
	runtime.SetFinalizer(m, func(m *ScriptModule) { m.Close() })
	return m
}

// Close frees the module (a no-op the second time).
func (m *ScriptModule) Close() {
	if m == nil || m.h == nil {
		return
	}
	C.msr_script_free(m.h)
	m.h = nil
	runtime.SetFinalizer(m, nil)
}

func (m *ScriptModule) usable(op string) error {
	if m == nil || m.h == nil {
		return errorf(op, "script module is closed")
	}
	return nil
}

// Register stores a detached copy of t under the dotted path, as a
// parameter or a buffer; the submodules on the way are created as needed.
// A path registered twice, or one running through a tensor, is an error.
func (m *ScriptModule) Register(path string, t *Tensor, slot ScriptSlot) error {
	op := "script register " + path
	if err := m.usable(op); err != nil {
		return err
	}
	if bad := firstErr(t); bad != nil {
		return fmt.Errorf("script register %s: %w", path, bad.err)
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	return check(op, C.msr_script_register(m.h, cpath, t.h, C.int(slot)))
}

// Define compiles TorchScript source: methods of the module, self being it.
// A compile error is returned with libtorch's message, which names the
// line and quotes the source around it.
func (m *ScriptModule) Define(src string) error {
	if err := m.usable("script define"); err != nil {
		return err
	}
	csrc := C.CString(src)
	defer C.free(unsafe.Pointer(csrc))
	return check("script define", C.msr_script_define(m.h, csrc))
}

// Save writes the module to path in TorchScript's zip format, with extra
// files that torch.jit.load(path, _extra_files={name: ""}) or
// ScriptExtraFile reads back.
func (m *ScriptModule) Save(path string, extra map[string][]byte) error {
	op := "script save " + path
	if err := m.usable(op); err != nil {
		return err
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	n := len(extra)
	// The name and value arrays hold C pointers, so they live in C memory.
	ptr := C.size_t(unsafe.Sizeof((*C.char)(nil)))
	cnames := (**C.char)(C.malloc(C.size_t(max(n, 1)) * ptr))
	cvalues := (**C.char)(C.malloc(C.size_t(max(n, 1)) * ptr))
	defer C.free(unsafe.Pointer(cnames))
	defer C.free(unsafe.Pointer(cvalues))
	names, values := unsafe.Slice(cnames, n), unsafe.Slice(cvalues, n)
	sizes := make([]int64, 0, n)
	for name, v := range extra {
		i := len(sizes)
		names[i], values[i] = C.CString(name), (*C.char)(C.CBytes(v))
		sizes = append(sizes, int64(len(v)))
	}
	defer func() {
		for i := range n {
			C.free(unsafe.Pointer(names[i]))
			C.free(unsafe.Pointer(values[i]))
		}
	}()
	return check(op, C.msr_script_save(m.h, cpath, cnames, cvalues, int64Ptr(sizes), C.int(n)))
}

// LoadScriptModule loads a saved TorchScript module onto the CPU, in
// evaluation mode.
func LoadScriptModule(path string) (*ScriptModule, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var h C.msr_script
	if err := check("script load "+path, C.msr_script_load(cpath, &h)); err != nil {
		return nil, err
	}
	return newScriptModule(h), nil
}

// ScriptExtraFile reads the extra file name saved with a module (Save's
// extra); empty when the module has none of that name.
func ScriptExtraFile(path, name string) ([]byte, error) {
	cpath, cname := C.CString(path), C.CString(name)
	defer C.free(unsafe.Pointer(cpath))
	defer C.free(unsafe.Pointer(cname))
	var buf *C.char
	var n C.int64_t
	if err := check("script extra file "+name+" of "+path, C.msr_script_extra_file(cpath, cname, &buf, &n)); err != nil {
		return nil, err
	}
	defer C.msr_free_buf(unsafe.Pointer(buf))
	return C.GoBytes(unsafe.Pointer(buf), C.int(n)), nil
}

// Forward calls the module's forward method on the inputs, without gradients.
func (m *ScriptModule) Forward(inputs ...*Tensor) *Tensor { return m.Call("forward", inputs...) }

// Call calls a method that takes tensors and returns one, without
// gradients. The result belongs to the innermost open scope, as any op's.
func (m *ScriptModule) Call(method string, inputs ...*Tensor) *Tensor {
	op := "script " + method
	if err := m.usable(op); err != nil {
		return failed(err)
	}
	if bad := firstErr(inputs...); bad != nil {
		return bad
	}
	cmethod := C.CString(method)
	defer C.free(unsafe.Pointer(cmethod))
	hs := handles(inputs)
	var out C.msr_tensor
	return result(op, C.msr_script_call(m.h, cmethod, handlesPtr(hs), C.int(len(hs)), &out), out)
}

// StateDict returns every parameter and buffer by its dotted name (aliases
// of the module's tensors, owned by the innermost open scope).
func (m *ScriptModule) StateDict() (map[string]*Tensor, error) {
	if err := m.usable("script state dict"); err != nil {
		return nil, err
	}
	var names *C.char
	var hs *C.msr_tensor
	var n C.int
	if err := check("script state dict", C.msr_script_state(m.h, &names, &hs, &n)); err != nil {
		return nil, err
	}
	defer C.msr_free_buf(unsafe.Pointer(names))
	defer C.msr_free_buf(unsafe.Pointer(hs))
	list := strings.Split(strings.TrimSuffix(C.GoString(names), "\n"), "\n")
	handles := unsafe.Slice(hs, int(n))
	out := make(map[string]*Tensor, int(n))
	for i, h := range handles {
		out[list[i]] = wrap(h)
	}
	return out, nil
}

// ScriptRef is the TorchScript expression that reaches the tensor or
// submodule registered under a dotted path from self: parts that are
// identifiers are attributes, the others (list indices such as "0") go
// through getattr.
func ScriptRef(path string) string {
	ref := "self"
	for _, part := range strings.Split(path, ".") {
		if isIdentifier(part) {
			ref += "." + part
		} else {
			ref = fmt.Sprintf("getattr(%s, %q)", ref, part)
		}
	}
	return ref
}

// pythonKeywords cannot be attribute names in TorchScript source.
var pythonKeywords = map[string]bool{
	"False": true, "None": true, "True": true, "and": true, "as": true, "assert": true, "async": true, "await": true,
	"break": true, "class": true, "continue": true, "def": true, "del": true, "elif": true, "else": true, "except": true,
	"finally": true, "for": true, "from": true, "global": true, "if": true, "import": true, "in": true, "is": true,
	"lambda": true, "nonlocal": true, "not": true, "or": true, "pass": true, "raise": true, "return": true, "try": true,
	"while": true, "with": true, "yield": true,
}

func isIdentifier(s string) bool {
	if s == "" || pythonKeywords[s] {
		return false
	}
	for i, r := range s {
		letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}
