package torch

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestGettersOnAFailedTensorPanic: a failed or freed tensor has no shape,
// dtype or device; the getters say so instead of passing a default off as one.
func TestGettersOnAFailedTensorPanic(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	freed := FromSlice([]float32{1, 2}) // outside any scope: ours to close
	require.NoError(t, freed.Close())
	assert.PanicsWithError(t, "torch: Device of a failed tensor (check Err or call Info first): torch: info: tensor was freed", func() { freed.Device() })

	scope := NewScope()
	defer scope.Close()
	bad := Ones([]int64{2, 3}, Float32, CPU).Matmul(Ones([]int64{2, 3}, Float32, CPU))
	require.Error(t, bad.Err())
	_, err := bad.Info()
	require.Equal(t, bad.Err(), err)
	for name, get := range map[string]func(){
		"Shape": func() { bad.Shape() }, "Numel": func() { bad.Numel() },
		"DType": func() { bad.DType() }, "Device": func() { bad.Device() },
	} {
		assert.PanicsWithError(t, "torch: "+name+" of a failed tensor (check Err or call Info first): "+err.Error(), get)
	}
	assert.Contains(t, bad.String(), "Tensor(error: ")

	good := Ones([]int64{2, 3}, Float64, CPU)
	assert.Equal(t, []int64{2, 3}, good.Shape())
	assert.Equal(t, int64(6), good.Numel())
	assert.Equal(t, Float64, good.DType())
	assert.Equal(t, CPU, good.Device())
}
