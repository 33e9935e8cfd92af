// Package safetensors reads and writes the safetensors tensor file format
// (https://github.com/huggingface/safetensors) in pure Go, and reads 2-D
// NumPy .npy matrices.
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of
// JSON describing every tensor (dtype, shape, data_offsets relative to the
// end of the header) plus an optional "__metadata__" string map, then the
// tensor bytes, little-endian and row-major, laid out contiguously.
//
// Everything read is validated: header size, dtype, shape × dtype size,
// offsets in range, contiguous and non-overlapping. Errors wrap ErrFormat and
// name the tensor (and the file, for ReadFile).
package safetensors
