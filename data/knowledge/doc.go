// Package knowledge builds the LLM knowledge vectors of LLM4MSR (Wang et al.,
// CIKM 2024): one scenario-level prompt per scenario and one user-level
// prompt per user are rendered from text/template files, an Encoder turns
// each prompt into a reasoning text and a vector, and a Store keeps the
// vectors (safetensors), an index (JSON) and the reasoning (JSONL) in a
// directory, built incrementally so an interrupted run resumes.
//
// Keys are "scenario:<name>" and "user:<raw user id>". See README.md for the
// store layout, the file-import layout and the encoders' settings.
package knowledge
