package serve

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/train"
)

// Model is one loaded model the server scores with. It does not change
// once loaded: a reload loads another and swaps it in.
//
// The server parses a request's rows into a data.Raw with Schema's fields,
// has Encode map them to model inputs on the request's goroutine, gathers
// the tables of concurrent requests into one, and has Score score it on
// the scoring goroutine.
type Model interface {
	// Name says which model this is (a checkpoint directory, an exported
	// directory), in responses, logs and metrics.
	Name() string
	// Schema is the fields a request row must hold: the scenario, the
	// categorical fields (user, item, the rest) and the numeric fields by
	// name, and the scenarios the model knows.
	Schema() *data.Schema
	// Encode maps rows read with Schema's fields to model inputs exactly as
	// training did (data.Encode: unseen values out of vocabulary, an unknown
	// scenario a *data.RowError). It runs on request goroutines, many at
	// once, and makes no torch calls.
	Encode(raw *data.Raw) (*data.Table, error)
	// Score returns the click probability of every row of t, in row order.
	// t holds the encoded rows of one or more requests, concatenated. Only
	// the scoring goroutine calls Score and Close.
	Score(t *data.Table) ([]float32, error)
	// Close frees the model.
	Close()
}

// Loader loads the model at path. It runs on the scoring goroutine, which
// is locked to its OS thread, and is called again for every reload.
type Loader func(path string) (Model, error)

// CheckpointLoader loads checkpoints (a run directory's best checkpoint, or
// a checkpoint directory) as msrtrain predict does, frozen for scoring, on
// device with threads CPU threads.
func CheckpointLoader(device string, threads int) Loader {
	return func(path string) (Model, error) {
		l, err := train.LoadModel(path, device, threads)
		if err != nil {
			return nil, err
		}
		f, err := l.Freeze()
		if err != nil {
			l.Close()
			return nil, err
		}
		return &checkpointModel{loaded: l, frozen: f}, nil
	}
}

// checkpointModel scores with a checkpoint's frozen model, the path that
// predict takes.
type checkpointModel struct {
	loaded *train.Loaded
	frozen *train.Frozen
}

func (m *checkpointModel) Name() string         { return m.loaded.Checkpoint.Dir }
func (m *checkpointModel) Schema() *data.Schema { return m.loaded.Checkpoint.Vocabs.Schema() }

func (m *checkpointModel) Encode(raw *data.Raw) (*data.Table, error) {
	return data.Encode(raw, m.loaded.Checkpoint.Vocabs)
}

func (m *checkpointModel) Score(t *data.Table) ([]float32, error) { return m.frozen.Score(t) }

func (m *checkpointModel) Close() {
	m.frozen.Close()
	m.loaded.Close()
}

// checkModel scores one row per scenario (every categorical value missing,
// every numeric value 0) and requires a probability for each: a model that
// fails this is never swapped in.
func checkModel(m Model) error {
	s := m.Schema()
	if len(s.Scenarios) == 0 || len(s.Categorical) < 2 {
		return fmt.Errorf("model %s: its schema has %d scenarios and %d categorical fields; want a scenario, a user and an item", m.Name(), len(s.Scenarios), len(s.Categorical))
	}
	for _, f := range append(append([]string{}, s.Categorical...), s.Numeric...) {
		if f == scenarioField {
			return fmt.Errorf("model %s: a field is named %q, which requests use for the scenario", m.Name(), scenarioField)
		}
	}
	raw := data.NewRawFor(s, "check")
	cat := make([]string, len(s.Categorical))
	num := make([]string, len(s.Numeric))
	for i := range num {
		num[i] = "0"
	}
	for _, sc := range s.Scenarios {
		if err := raw.AppendValues(sc.Name, cat, num); err != nil {
			return fmt.Errorf("model %s: %w", m.Name(), err)
		}
	}
	t, err := m.Encode(raw)
	if err != nil {
		return fmt.Errorf("model %s: encoding a row per scenario: %w", m.Name(), err)
	}
	probs, err := m.Score(t)
	if err != nil {
		return fmt.Errorf("model %s: scoring a row per scenario: %w", m.Name(), err)
	}
	if len(probs) != len(s.Scenarios) {
		return fmt.Errorf("model %s: %d scores for %d rows", m.Name(), len(probs), len(s.Scenarios))
	}
	for i, p := range probs {
		if math.IsNaN(float64(p)) || p < 0 || p > 1 {
			return fmt.Errorf("model %s: scenario %q scores %s, not a probability", m.Name(), s.Scenarios[i].Name, strconv.FormatFloat(float64(p), 'g', -1, 32))
		}
	}
	return nil
}

// served is a model in service, shared by the requests that encoded rows
// with it. It is closed (on the scoring goroutine) once it has been
// swapped out and its last request has finished: requests in flight during
// a reload finish on the model they started with.
type served struct {
	Model
	nameJSON []byte // Name as a JSON string, for responses
	// refs counts the requests using the model, plus one while it is current.
	refs    atomic.Int64
	retire  func(*served) // hands the model to the scoring goroutine to close
	retired sync.Once
}

func newServed(m Model, retire func(*served)) *served {
	name, _ := json.Marshal(m.Name())
	s := &served{Model: m, nameJSON: name, retire: retire}
	s.refs.Store(1)
	return s
}

func (s *served) release() {
	if s.refs.Add(-1) == 0 {
		s.retired.Do(func() { s.retire(s) })
	}
}

// current holds the model new requests use.
type current struct{ p atomic.Pointer[served] }

// acquire returns the current model with a reference the caller releases.
// A model swapped out between the load and the increment may already be
// closing: then the increment is undone and the new model taken.
func (c *current) acquire() (*served, error) {
	for {
		s := c.p.Load()
		if s == nil {
			return nil, errNoModel
		}
		s.refs.Add(1)
		if c.p.Load() == s {
			return s, nil
		}
		s.release()
	}
}

// swap makes s current and drops the old model's reference as current.
func (c *current) swap(s *served) {
	if old := c.p.Swap(s); old != nil {
		old.release()
	}
}

var errNoModel = errors.New("no model loaded")
