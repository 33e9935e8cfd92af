// Package data turns the datasets a user brings (generic CSV/TSV, KuaiSAR,
// Amazon reviews, Douban) or the built-in synthetic generator into encoded
// tables, and feeds them to the trainer in batches of plain Go slices.
//
// The flow is one way:
//
//	files ──read──▶ Raw (interned strings, column-major)
//	      ──split──▶ train / valid / test row sets
//	      ──BuildVocabs(train)──▶ Vocabs (saved with the model)
//	      ──Encode──▶ Table (dense indices, row-major) ──Batcher──▶ Batch
//
// Load does all of it from a Config. Eval and predict data are read with
// ReadFile and mapped with the saved Vocabs by Encode, so ids map exactly as
// in training. Data larger than memory is streamed from disk by Stream.
//
// The package is plain Go: no cgo and no other project package. See
// README.md for the formats, the YAML keys and the synthetic model.
package data
