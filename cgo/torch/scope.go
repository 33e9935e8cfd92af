package torch

/*
#include "msr.h"
*/
import "C"

import (
	"sync"
)

// Scope owns every tensor created while it is the innermost open scope and
// frees them all in one call when closed. One training step is one scope.
type Scope struct {
	owned  []*Tensor
	parent *Scope
	closed bool
}

// scopes is process-wide: torch work runs on one goroutine (see package doc).
var scopes struct {
	sync.Mutex
	top *Scope
}

// NewScope opens a scope inside the current one.
func NewScope() *Scope {
	scopes.Lock()
	defer scopes.Unlock()
	s := &Scope{parent: scopes.top}
	scopes.top = s
	return s
}

// Close frees every tensor the scope still owns. Scopes close innermost first.
func (s *Scope) Close() {
	scopes.Lock()
	if s.closed {
		scopes.Unlock()
		return
	}
	if scopes.top != s {
		scopes.Unlock()
		panic("torch: scopes must be closed innermost first")
	}
	scopes.top = s.parent
	s.closed = true
	owned := s.owned
	s.owned = nil
	scopes.Unlock()
	hs := make([]C.msr_tensor, 0, len(owned))
	for _, t := range owned {
		if t.h != nil {
			hs = append(hs, t.h)
			t.h = nil
		}
	}
	freeHandles(hs)
}

// Keep moves tensors out of the scope into its parent scope or, at the top,
// into the caller's hands (who must Close them). Keep a step's outputs that must survive it.
func (s *Scope) Keep(ts ...*Tensor) {
	scopes.Lock()
	defer scopes.Unlock()
	keep := make(map[*Tensor]bool, len(ts))
	for _, t := range ts {
		if t != nil && t.h != nil {
			keep[t] = true
		}
	}
	rest := s.owned[:0]
	for _, t := range s.owned {
		if !keep[t] {
			rest = append(rest, t)
			continue
		}
		if s.parent != nil {
			s.parent.owned = append(s.parent.owned, t)
		} else {
			t.owned = false
			watchLeak(t)
		}
	}
	s.owned = rest
}

// Len is the number of tensors the scope owns.
func (s *Scope) Len() int { return len(s.owned) }
