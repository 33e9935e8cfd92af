package torch

import "testing"

// Whole-number scalars keep integer tensors integer (index + offset must stay
// usable as an index); fractional ones promote as in PyTorch.
func TestScalarOpsKeepIntegerDtype(t *testing.T) {
	s := NewScope()
	defer s.Close()
	idx := FromSlice([]int64{0, 3, 5})
	shifted := idx.AddScalar(10)
	if shifted.DType() != Int64 {
		t.Fatalf("int64 + 10 is %s, want int64", shifted.DType())
	}
	got, err := shifted.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	if got[0] != 10 || got[1] != 13 || got[2] != 15 {
		t.Errorf("int64 + 10 = %v", got)
	}
	if half := idx.MulScalar(0.5); half.DType() != Float32 {
		t.Errorf("int64 * 0.5 is %s, want float32", half.DType())
	}
}

// make setup installs libopenblas0-pthread because Debian's libtorch
// otherwise runs matrix products on the reference BLAS, ~60x slower; this
// catches a machine (or a set-up step) without it.
func TestLoadedBLASIsOpenBLAS(t *testing.T) {
	path, open, err := LoadedBLAS()
	if err != nil {
		t.Fatal(err)
	}
	if !open {
		t.Errorf("libtorch runs on %s, not OpenBLAS: install libopenblas0-pthread", path)
	}
}
