package torch

import (
	"math/rand"
	"testing"

	"github.com/stretchr/testify/require"
)

// generatedLayerRef builds every row's layer from the head, as the
// definition reads, and returns y and the gradients of Σ c·y by z, the
// head's weight and bias, and h, in float64.
func generatedLayerRef(z, weight, bias, h, c nd, in, out, offset int64, scale float64) (y, dz, dweight, dbias, dh nd) {
	rows, gens := z.shape[0], h.shape[1]
	y, dz, dh = newND(rows, out), newND(rows, in), newND(rows, gens)
	dweight, dbias = newND(weight.shape...), newND(bias.shape...)
	for b := range rows {
		for o := range out {
			cb := c.at(b, o)
			// The bias row of the layer: weight·h + bias.
			br := offset + in*out + o
			v := bias.at(br)
			for g := range gens {
				v += weight.at(br, g) * h.at(b, g)
				dweight.set(dweight.at(br, g)+cb*h.at(b, g), br, g)
				dh.set(dh.at(b, g)+cb*weight.at(br, g), b, g)
			}
			dbias.set(dbias.at(br)+cb, br)
			for i := range in {
				wr := offset + i*out + o
				w := bias.at(wr)
				for g := range gens {
					w += weight.at(wr, g) * h.at(b, g)
				}
				v += z.at(b, i) * scale * w
				dz.set(dz.at(b, i)+cb*scale*w, b, i)
				for g := range gens {
					dweight.set(dweight.at(wr, g)+cb*z.at(b, i)*scale*h.at(b, g), wr, g)
					dh.set(dh.at(b, g)+cb*z.at(b, i)*scale*weight.at(wr, g), b, g)
				}
				dbias.set(dbias.at(wr)+cb*z.at(b, i)*scale, wr)
			}
			y.set(v, b, o)
		}
	}
	return y, dz, dweight, dbias, dh
}

// TestGeneratedLayer checks the fused layer's output and all four
// gradients against building every row's weights, on the CPU loop
// (float32) and the libtorch ops every other tensor takes (float64), with
// the layer's slice in the middle of a larger head: the head rows outside
// it must get zero gradient.
func TestGeneratedLayer(t *testing.T) {
	const rows, in, out, gens, offset, after, scale = 5, 3, 4, 2, 6, 3, 0.7
	r := rand.New(rand.NewSource(3))
	heads := int64(offset + in*out + out + after)
	z, h, c := randND(r, rows, in), randND(r, rows, gens), randND(r, rows, out)
	weight, bias := randND(r, heads, gens), randND(r, heads)
	y, dz, dweight, dbias, dh := generatedLayerRef(z, weight, bias, h, c, in, out, offset, scale)
	for _, tc := range []struct {
		name string
		make func(nd) *Tensor
		tol  float64
	}{{"float32 CPU loop", nd.f32, 1e-5}, {"float64 libtorch ops", nd.f64, 1e-12}} {
		t.Run(tc.name, func(t *testing.T) {
			scoped(t, func() {
				tz, tw, tb, th := tc.make(z), tc.make(weight), tc.make(bias), tc.make(h)
				for _, p := range []*Tensor{tz, tw, tb, th} {
					require.NoError(t, p.SetRequiresGrad(true))
				}
				got := GeneratedLayer(tz, tw, tb, th, in, out, offset, scale)
				requireClose(t, y, got, tc.tol, tc.tol, "y")
				require.NoError(t, got.Mul(tc.make(c)).Sum(false).Backward())
				requireClose(t, dz, tz.Grad(), tc.tol, tc.tol, "dz")
				requireClose(t, dweight, tw.Grad(), tc.tol, tc.tol, "d weight")
				requireClose(t, dbias, tb.Grad(), tc.tol, tc.tol, "d bias")
				requireClose(t, dh, th.Grad(), tc.tol, tc.tol, "dh")
			})
		})
	}
}

// TestGeneratedLayerErrors: shapes that do not fit come back as an error
// naming the op and every shape, not a crash.
func TestGeneratedLayerErrors(t *testing.T) {
	scoped(t, func() {
		z, h := Zeros([]int64{4, 3}, Float32, CPU), Zeros([]int64{4, 2}, Float32, CPU)
		weight, bias := Zeros([]int64{20, 2}, Float32, CPU), Zeros([]int64{20}, Float32, CPU)
		for _, tc := range []struct {
			name            string
			z, w, b, h      *Tensor
			in, out, offset int64
			want            string
		}{
			{"slice past the head", z, weight, bias, h, 3, 4, 6, "runs past the head"},
			{"z not in wide", z, weight, bias, h, 2, 4, 0, "z is not in wide"},
			{"h's columns", z, weight, bias, Zeros([]int64{4, 3}, Float32, CPU), 3, 4, 0, "h must have"},
			{"h's rows", z, weight, bias, Zeros([]int64{5, 2}, Float32, CPU), 3, 4, 0, "h must have"},
			{"bias rows", z, weight, Zeros([]int64{19}, Float32, CPU), h, 3, 4, 0, "bias and weight"},
			{"1-D weight", z, Zeros([]int64{20}, Float32, CPU), bias, h, 3, 4, 0, "want z, weight and h 2-D"},
		} {
			err := GeneratedLayer(tc.z, tc.w, tc.b, tc.h, tc.in, tc.out, tc.offset, 1).Err()
			require.Error(t, err, tc.name)
			require.Contains(t, err.Error(), "generated layer", tc.name)
			require.Contains(t, err.Error(), tc.want, tc.name)
		}
	})
}
