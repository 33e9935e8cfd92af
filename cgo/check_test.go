package torch

// A small stand-in for testify's assert and require: testify v1.12 imports
// go.yaml.in/yaml/v3, which go.sum does not list, and the module files are
// not this package's to change. The method names and argument orders match
// testify's so the tests read the same.

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
)

type checker struct{ fatal bool }

var (
	assert  = checker{fatal: false}
	require = checker{fatal: true}
)

func (c checker) fail(t testing.TB, what string, msgs []any) bool {
	t.Helper()
	if len(msgs) > 0 {
		if f, ok := msgs[0].(string); ok && strings.Contains(f, "%") {
			what += ": " + fmt.Sprintf(f, msgs[1:]...)
		} else {
			what += ": " + fmt.Sprint(msgs...)
		}
	}
	if c.fatal {
		t.Fatal(what)
	} else {
		t.Error(what)
	}
	return false
}

func (c checker) NoError(t testing.TB, err error, msgs ...any) bool {
	t.Helper()
	if err != nil {
		return c.fail(t, fmt.Sprintf("unexpected error: %v", err), msgs)
	}
	return true
}

func (c checker) Error(t testing.TB, err error, msgs ...any) bool {
	t.Helper()
	if err == nil {
		return c.fail(t, "expected an error, got nil", msgs)
	}
	return true
}

func (c checker) ErrorContains(t testing.TB, err error, sub string, msgs ...any) bool {
	t.Helper()
	if err == nil {
		return c.fail(t, fmt.Sprintf("expected an error containing %q, got nil", sub), msgs)
	}
	if !strings.Contains(err.Error(), sub) {
		return c.fail(t, fmt.Sprintf("error %q does not contain %q", err, sub), msgs)
	}
	return true
}

func (c checker) ErrorIs(t testing.TB, err, target error, msgs ...any) bool {
	t.Helper()
	if !errors.Is(err, target) {
		return c.fail(t, fmt.Sprintf("error %v is not %v", err, target), msgs)
	}
	return true
}

func (c checker) NotErrorIs(t testing.TB, err, target error, msgs ...any) bool {
	t.Helper()
	if errors.Is(err, target) {
		return c.fail(t, fmt.Sprintf("error %v should not be %v", err, target), msgs)
	}
	return true
}

func (c checker) Equal(t testing.TB, want, got any, msgs ...any) bool {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		return c.fail(t, fmt.Sprintf("not equal:\n  want %#v\n  got  %#v", want, got), msgs)
	}
	return true
}

func (c checker) NotEqual(t testing.TB, a, b any, msgs ...any) bool {
	t.Helper()
	if reflect.DeepEqual(a, b) {
		return c.fail(t, fmt.Sprintf("should differ, both are %#v", a), msgs)
	}
	return true
}

func (c checker) True(t testing.TB, v bool, msgs ...any) bool {
	t.Helper()
	if !v {
		return c.fail(t, "should be true", msgs)
	}
	return true
}

func (c checker) False(t testing.TB, v bool, msgs ...any) bool {
	t.Helper()
	if v {
		return c.fail(t, "should be false", msgs)
	}
	return true
}

func (c checker) Nil(t testing.TB, v any, msgs ...any) bool {
	t.Helper()
	if rv := reflect.ValueOf(v); v != nil && !((rv.Kind() == reflect.Ptr || rv.Kind() == reflect.Slice || rv.Kind() == reflect.Map) && rv.IsNil()) {
		return c.fail(t, fmt.Sprintf("expected nil, got %#v", v), msgs)
	}
	return true
}

func (c checker) InDelta(t testing.TB, want, got, delta float64, msgs ...any) bool {
	t.Helper()
	if !(math.Abs(want-got) <= delta) {
		return c.fail(t, fmt.Sprintf("%v and %v differ by more than %v", want, got, delta), msgs)
	}
	return true
}

func (c checker) Len(t testing.TB, v any, n int, msgs ...any) bool {
	t.Helper()
	if l := reflect.ValueOf(v).Len(); l != n {
		return c.fail(t, fmt.Sprintf("length %d, want %d", l, n), msgs)
	}
	return true
}

func (c checker) Empty(t testing.TB, v any, msgs ...any) bool {
	t.Helper()
	if l := reflect.ValueOf(v).Len(); l != 0 {
		return c.fail(t, fmt.Sprintf("expected empty, has %d elements", l), msgs)
	}
	return true
}

func (c checker) Less(t testing.TB, a, b float64, msgs ...any) bool {
	t.Helper()
	if !(a < b) {
		return c.fail(t, fmt.Sprintf("%v is not less than %v", a, b), msgs)
	}
	return true
}

func (c checker) Failf(t testing.TB, what, format string, args ...any) bool {
	t.Helper()
	return c.fail(t, what+": "+fmt.Sprintf(format, args...), nil)
}

// Panics checks that f panics and returns the panic value's text.
func (c checker) Panics(t testing.TB, f func(), msgs ...any) bool {
	t.Helper()
	panicked := func() (p bool) {
		defer func() {
			if recover() != nil {
				p = true
			}
		}()
		f()
		return false
	}()
	if !panicked {
		return c.fail(t, "expected a panic", msgs)
	}
	return true
}
