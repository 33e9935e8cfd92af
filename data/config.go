package data

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"go.yaml.in/yaml/v3"
)

// Config is the YAML data config. The zero value of every key means its
// documented default (see DefaultConfig and README.md).
type Config struct {
	// Format is how the rows are read (FormatValues; default synthetic).
	Format Format `yaml:"format"`
	// Path is the data file (csv, douban), directory (kuaisar, amazon), or
	// file, directory or glob pattern (parquet).
	Path string `yaml:"path"`
	// Files lists several files read as one dataset (csv, parquet, douban, amazon).
	Files []string `yaml:"files"`
	// Train, Valid and Test give the split as files (csv, parquet, douban);
	// Valid and Test may be empty. Giving Train selects split method files (auto).
	Train string `yaml:"train"`
	Valid string `yaml:"valid"`
	Test  string `yaml:"test"`
	// Delimiter is "," by default, or "\t"/"tab" (the default for .tsv files).
	Delimiter string `yaml:"delimiter"`
	// Header says whether the first line names the columns (default true).
	Header *bool `yaml:"header"`
	// Columns names the columns and their roles (csv and parquet;
	// optional overrides are ignored by the other formats).
	Columns Columns `yaml:"columns"`
	// Scenarios fixes the scenario ids (list order) and their descriptions.
	// When empty, scenarios are those of the training data in natural order.
	Scenarios []ScenarioInfo `yaml:"scenarios"`
	// Split is how rows are split into train, valid and test.
	Split SplitConfig `yaml:"split"`
	// MinCount drops categorical values seen fewer times in training to the
	// out-of-vocabulary index 0 (default 1: keep all).
	MinCount int `yaml:"min_count"`
	// SkipBadRows skips bad rows, counting them in Splits.Skipped, instead of
	// failing on the first one.
	SkipBadRows bool `yaml:"skip_bad_rows"`
	// MaxRows reads at most this many rows per file (0: all).
	MaxRows int `yaml:"max_rows"`
	// Seed seeds the random split, the shuffle and the synthetic generator.
	Seed int64 `yaml:"seed"`
	// Synthetic sizes the generated dataset (format synthetic).
	Synthetic Synthetic `yaml:"synthetic"`
	// Stream reads csv or parquet data from disk in blocks instead of into memory.
	Stream StreamConfig `yaml:"stream"`
}

// Columns names the columns of a csv file and their roles. Each is a
// ColumnRef: a name, a 0-based position, or {name|index, as, threshold}.
type Columns struct {
	Scenario     ColumnRef   `yaml:"scenario"`
	User         ColumnRef   `yaml:"user"`
	Item         ColumnRef   `yaml:"item"`
	Categorical  []ColumnRef `yaml:"categorical"`
	Numeric      []ColumnRef `yaml:"numeric"`
	Labels       []ColumnRef `yaml:"labels"`
	Time         ColumnRef   `yaml:"time"`
	ItemTitle    ColumnRef   `yaml:"item_title"`
	ItemCategory ColumnRef   `yaml:"item_category"`
}

// ColumnRef selects a column by header name or by 0-based position (needed
// when names repeat or there is no header). As renames the field; Threshold
// (labels only) makes the label value > Threshold instead of requiring 0/1.
type ColumnRef struct {
	Name      string   `yaml:"name"`
	Index     *int     `yaml:"index"`
	As        string   `yaml:"as"`
	Threshold *float64 `yaml:"threshold"`
}

// Col selects a column by name; ColAt by position.
func Col(name string) ColumnRef { return ColumnRef{Name: name} }

// ColAt selects the column at 0-based position i, naming the field as.
func ColAt(i int, as string) ColumnRef { return ColumnRef{Index: &i, As: as} }

// IsSet reports whether the reference selects anything.
func (c ColumnRef) IsSet() bool { return c.Name != "" || c.Index != nil }

// Field is the name of the field in the schema.
func (c ColumnRef) Field() string {
	switch {
	case c.As != "":
		return c.As
	case c.Name != "":
		return c.Name
	case c.Index != nil:
		return "col" + strconv.Itoa(*c.Index)
	}
	return ""
}

// UnmarshalYAML accepts a scalar (an integer is a position, anything else a
// name) or a mapping.
func (c *ColumnRef) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Tag == "!!int" {
			i, err := strconv.Atoi(n.Value)
			if err != nil {
				return err
			}
			*c = ColumnRef{Index: &i}
			return nil
		}
		*c = ColumnRef{Name: n.Value}
		return nil
	}
	type plain ColumnRef
	return n.Decode((*plain)(c))
}

// SplitConfig says how rows are split.
type SplitConfig struct {
	// Method is auto (default: files when Train is set, else random),
	// random, time (by timestamp: the latest rows are the test set) or files.
	Method SplitMethod `yaml:"method"`
	// Ratios of train:valid:test (default 8:1:1).
	Ratios []float64 `yaml:"ratios"`
}

// StreamConfig enables streaming for data larger than memory (csv and parquet).
type StreamConfig struct {
	Enabled bool `yaml:"enabled"`
	// BlockRows is how many rows are read and encoded at a time (65536).
	BlockRows int `yaml:"block_rows"`
	// ShuffleBuffer is how many rows the bounded shuffle holds (1<<20).
	ShuffleBuffer int `yaml:"shuffle_buffer"`
}

// DefaultConfig is the config used when no data config is given: the
// synthetic dataset with its defaults.
func DefaultConfig() Config {
	c := Config{Seed: 42}
	c.fillDefaults()
	// The per-scenario lists follow synthetic.scenarios: left empty here, they
	// are derived when the data is generated, so that a config which only
	// changes the number of scenarios stays valid.
	syn := &c.Synthetic
	syn.Correlation, syn.Share, syn.Presence, syn.CTR, syn.Strength = nil, nil, nil, nil, nil
	return c
}

func (c *Config) fillDefaults() {
	if c.Format == "" {
		c.Format = FormatSynthetic
	}
	if c.Header == nil {
		t := true
		c.Header = &t
	}
	if c.MinCount <= 0 {
		c.MinCount = 1
	}
	if c.Split.Method == "" {
		// Resolved when the data loads (splitMethod), not here: the default
		// tree is filled before a config file says whether it gives train.
		c.Split.Method = SplitAuto
	}
	if len(c.Split.Ratios) == 0 {
		c.Split.Ratios = []float64{8, 1, 1}
	}
	if c.Stream.BlockRows <= 0 {
		c.Stream.BlockRows = 1 << 16
	}
	if c.Stream.ShuffleBuffer <= 0 {
		c.Stream.ShuffleBuffer = 1 << 20
	}
	c.Synthetic.fillDefaults()
}

// Validate checks the config after defaults are filled.
func (c *Config) Validate() error {
	if err := c.validateFormat(); err != nil {
		return err
	}
	if err := SplitMethodValues.Check("split.method", c.Split.Method); err != nil {
		return fmt.Errorf("data config: %w", err)
	}
	switch m := c.splitMethod(); {
	case m == SplitFiles && c.Train == "":
		return fmt.Errorf("data config: split method files needs train")
	case m != SplitFiles && c.Train != "":
		return fmt.Errorf("data config: train, valid and test give the split as files, but split.method is %s; drop split.method or set it to files", m)
	}
	if len(c.Split.Ratios) != 3 {
		return fmt.Errorf("data config: split ratios %v: want three numbers", c.Split.Ratios)
	}
	sum := 0.0
	for _, r := range c.Split.Ratios {
		if r < 0 {
			return fmt.Errorf("data config: split ratios %v: negative", c.Split.Ratios)
		}
		sum += r
	}
	if sum <= 0 || c.Split.Ratios[0] <= 0 {
		return fmt.Errorf("data config: split ratios %v: train must be positive", c.Split.Ratios)
	}
	if _, err := c.delimiter(""); err != nil {
		return err
	}
	syn := c.Synthetic
	syn.fillDefaults() // derive what is left empty, as generation will
	return syn.validate()
}

// delimiter resolves the delimiter for a file.
func (c *Config) delimiter(file string) (byte, error) {
	switch c.Delimiter {
	case "":
		if len(file) > 4 && file[len(file)-4:] == ".tsv" {
			return '\t', nil
		}
		return ',', nil
	case "\t", "tab", `\t`:
		return '\t', nil
	}
	if len(c.Delimiter) != 1 || c.Delimiter[0] == '"' || c.Delimiter[0] == '\n' {
		return 0, fmt.Errorf("data config: delimiter %q: want one character", c.Delimiter)
	}
	return c.Delimiter[0], nil
}

// ParseConfig reads a YAML data config, rejecting unknown keys, and fills
// the defaults.
func ParseConfig(b []byte) (Config, error) {
	c := Config{Seed: 42}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("data config: %w", err)
	}
	c.fillDefaults()
	return c, c.Validate()
}

// LoadConfig reads a YAML data config file.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
