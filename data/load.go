package data

import (
	"fmt"
	"os"
)

// Splits is a loaded dataset: the three encoded splits, the vocabularies
// built on Train, and Train's per-scenario statistics. With streaming
// (stream.enabled) the tables are nil and Source streams from disk.
type Splits struct {
	Train, Valid, Test *Table // Valid and Test may have no rows
	Vocabs             *Vocabs
	Stats              []ScenarioStats // of Train
	Skipped            BadRows         // rows skipped under skip_bad_rows
	Synthetic          *SyntheticData  // ground truth, for format synthetic
	Config             Config          // the resolved config

	stream *streamSet
}

// Option changes how Load works.
type Option func(*loadOptions)

type loadOptions struct {
	vocabs *Vocabs
}

// WithVocabs maps the data with saved vocabularies instead of building
// them on the training split (to evaluate a trained model).
func WithVocabs(v *Vocabs) Option { return func(o *loadOptions) { o.vocabs = v } }

// Load reads the data that cfg describes, splits it, builds vocabularies on
// the training split and encodes all three splits.
func Load(cfg Config, opts ...Option) (*Splits, error) {
	var lo loadOptions
	for _, o := range opts {
		o(&lo)
	}
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.CheckPaths(); err != nil {
		return nil, err
	}
	if cfg.Stream.Enabled {
		return loadStream(cfg, lo)
	}
	sp := &Splits{Config: cfg}
	var raws [3]*Raw
	var rows [3][]int32
	method := cfg.splitMethod()
	if method == SplitFiles {
		for p, f := range []string{cfg.Train, cfg.Valid, cfg.Test} {
			if f == "" {
				continue
			}
			r, err := readFiles(&cfg, []string{f}, false)
			if err != nil {
				return nil, err
			}
			raws[p] = r
			sp.Skipped.merge(r.Skipped)
		}
	} else {
		var raw *Raw
		if cfg.Format.Generated() {
			d, err := Generate(cfg.Synthetic, cfg.Seed)
			if err != nil {
				return nil, err
			}
			sp.Synthetic, raw = d, d.Raw
			raw.seal()
		} else {
			var err error
			if raw, err = readFiles(&cfg, cfg.paths(), false); err != nil {
				return nil, err
			}
		}
		var err error
		if rows, err = SplitRows(raw, method, cfg.Split.Ratios, cfg.Seed); err != nil {
			return nil, err
		}
		raws = [3]*Raw{raw, raw, raw}
		sp.Skipped = raw.Skipped
	}
	sp.Vocabs = lo.vocabs
	if sp.Vocabs == nil {
		fixed := cfg.Scenarios
		if len(fixed) == 0 && sp.Synthetic != nil {
			fixed = sp.Synthetic.ScenarioInfo // keep the generator's order
		}
		sp.Vocabs = BuildVocabs(raws[Train], rows[Train], cfg.MinCount, fixed)
	}
	// A Raw that was read for these tables gives up what they copy as they
	// fill (encodeParts); the generator's Raw, its ground truth, stays whole.
	free := sp.Synthetic == nil
	tables := [3]**Table{&sp.Train, &sp.Valid, &sp.Test}
	if method == SplitFiles {
		for p := range raws {
			if raws[p] == nil {
				*tables[p] = emptyTable(sp.Vocabs.Schema())
				continue
			}
			ts, err := encodeParts(raws[p], [][]int32{allRows(raws[p].Len())}, sp.Vocabs, free)
			if err != nil {
				return nil, err
			}
			*tables[p] = ts[0]
		}
	} else {
		ts, err := encodeParts(raws[Train], rows[:], sp.Vocabs, free)
		if err != nil {
			return nil, err
		}
		sp.Train, sp.Valid, sp.Test = ts[Train], ts[Valid], ts[Test]
	}
	if sp.Train.Len() == 0 {
		return nil, fmt.Errorf("data: the training split is empty")
	}
	sp.Stats = sp.Train.Stats()
	return sp, nil
}

func emptyTable(s *Schema) *Table { return &Table{Schema: s} }

// Source returns the batches of one split: a Batcher over its table, or a
// stream from disk when streaming.
// Rows is the number of rows in part p, held in its table or, when
// streaming, counted by Load's first pass.
func (s *Splits) Rows(p Part) int {
	if s.stream != nil {
		return s.stream.rows[p]
	}
	t := [...]*Table{Train: s.Train, Valid: s.Valid, Test: s.Test}[p]
	if t == nil {
		return 0
	}
	return t.Len()
}

func (s *Splits) Source(p Part, o BatchOptions) (Source, error) {
	if s.stream != nil {
		return s.stream.source(p, o)
	}
	t := [3]*Table{s.Train, s.Valid, s.Test}[p]
	return NewBatcher(t, o)
}

// paths lists the data files of cfg: Path then Files.
func (c *Config) paths() []string {
	var out []string
	if c.Path != "" {
		out = append(out, c.Path)
	}
	return append(out, c.Files...)
}

// ReadFile reads one file (a directory for kuaisar and amazon; a
// directory or glob pattern for parquet) in cfg's format, for evaluation
// or prediction; map it with saved vocabularies by Encode. Label columns
// may be missing (predict data): the labels are then 0. With a csv or
// parquet configuration, a .parquet file is read as Parquet and a .csv or
// .tsv file as CSV, with the same columns.
func ReadFile(cfg Config, path string) (*Raw, error) {
	cfg.fillDefaults()
	if cfg.Format.Generated() {
		cfg = CSVConfig(newSyntheticRaw(), path)
	}
	cfg.Format = cfg.readFormat(path)
	return readFiles(&cfg, []string{path}, true)
}

// readFiles reads files in cfg's format into one Raw, then applies the
// scenario descriptions of the config.
func readFiles(cfg *Config, files []string, predict bool) (*Raw, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("data: format %s: no files given", cfg.Format)
	}
	read := cfg.Format.reader()
	if read == nil {
		return nil, fmt.Errorf("data: format %q cannot be read from files", cfg.Format)
	}
	raw, err := read(cfg, files, predict)
	if err != nil {
		return nil, err
	}
	raw.seal()
	for _, sc := range cfg.Scenarios {
		if sc.Description != "" {
			raw.Descriptions[sc.Name] = sc.Description
		}
	}
	return raw, nil
}

// readGeneric reads csv files (format csv) with the config's columns.
func readGeneric(cfg *Config, files []string, predict bool) (*Raw, error) {
	raw := newRawFor(&cfg.Columns)
	for _, f := range files {
		o, err := cfg.readOptions(f)
		if err != nil {
			return nil, err
		}
		o.optionalLabels = predict
		if err := readCSVFile(raw, f, &cfg.Columns, o); err != nil {
			return nil, err
		}
	}
	return raw, nil
}

// isDir reports whether path is a directory.
func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}
