package data

import (
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/msrtrain/msrtrain/data/choice"
)

// Format is data.format: how the rows are read (or generated).
type Format string

// The formats (README.md describes each one's files).
const (
	FormatSynthetic Format = "synthetic"
	FormatCSV       Format = "csv"
	FormatDouban    Format = "douban"
	FormatKuaiSAR   Format = "kuaisar"
	FormatAmazon    Format = "amazon"
	FormatParquet   Format = "parquet"
)

// A reader reads a format's paths (files, or directories where the format
// has them) into one Raw. predict allows files without label columns.
type reader func(cfg *Config, paths []string, predict bool) (*Raw, error)

// formats is the one list of data formats. Adding a format is adding its
// reader here; loading, prediction, validation and messages follow.
var formats = []struct {
	format  Format
	read    reader // nil: generated, not read
	streams bool   // can stream from disk (stream.enabled)
}{
	{FormatSynthetic, nil, false},
	{FormatCSV, readGeneric, true},
	{FormatParquet, readParquet, true},
	{FormatDouban, readDouban, false},
	{FormatKuaiSAR, readKuaiSAR, false},
	{FormatAmazon, readAmazon, false},
}

// FormatValues are data.format's values.
var FormatValues = func() choice.Set[Format] {
	names := make([]Format, len(formats))
	for i, f := range formats {
		names[i] = f.format
	}
	return choice.New("data format", names...)
}()

// UnmarshalYAML accepts one of FormatValues.
func (f *Format) UnmarshalYAML(n *yaml.Node) error { return FormatValues.Decode(n, f) }

func (f Format) reader() reader {
	for _, e := range formats {
		if e.format == f {
			return e.read
		}
	}
	return nil
}

// Generated reports whether the rows are generated rather than read from files.
func (f Format) Generated() bool { return f == FormatSynthetic }

// Streams reports whether the format can stream from disk (stream.enabled).
func (f Format) Streams() bool {
	for _, e := range formats {
		if e.format == f {
			return e.streams
		}
	}
	return false
}

// streamingFormats lists the formats that stream, for messages.
func streamingFormats() []Format {
	var out []Format
	for _, e := range formats {
		if e.streams {
			out = append(out, e.format)
		}
	}
	return out
}

// SplitMethod is data.split.method: how the rows are split into train, valid and test.
type SplitMethod string

// The split methods.
const (
	// SplitAuto is files when data.train is given, random otherwise.
	SplitAuto   SplitMethod = "auto"
	SplitRandom SplitMethod = "random" // shuffled by the seed
	SplitTime   SplitMethod = "time"   // by timestamp: the latest rows are the test set
	SplitFiles  SplitMethod = "files"  // data.train, data.valid and data.test
)

// SplitMethodValues are data.split.method's values.
var SplitMethodValues = choice.New("split method", SplitAuto, SplitRandom, SplitTime, SplitFiles)

// UnmarshalYAML accepts one of SplitMethodValues.
func (m *SplitMethod) UnmarshalYAML(n *yaml.Node) error { return SplitMethodValues.Decode(n, m) }

// splitMethod is the method the config selects, auto resolved.
func (c *Config) splitMethod() SplitMethod {
	if c.Split.Method == SplitAuto || c.Split.Method == "" {
		if c.Train != "" {
			return SplitFiles
		}
		return SplitRandom
	}
	return c.Split.Method
}

// validateFormat checks the format and what it needs.
func (c *Config) validateFormat() error {
	if !FormatValues.Has(c.Format) {
		return fmt.Errorf("data config: %s", FormatValues.Check("format", c.Format))
	}
	if !c.Format.Generated() && c.Path == "" && len(c.Files) == 0 && c.Train == "" {
		return fmt.Errorf("data config: format %s needs path, files or train", c.Format)
	}
	if c.Stream.Enabled && !c.Format.Streams() {
		return fmt.Errorf("data config: stream is supported for format %s only, not %s", choice.New("", streamingFormats()...), c.Format)
	}
	return nil
}

// TableFormatValues are the formats msrtrain writes tables of rows in
// (data synth, predict's output).
var TableFormatValues = choice.New("table format", FormatCSV, FormatParquet)

// TableFormat is the format of a table file: flag when given (one of
// TableFormatValues), else parquet for a name ending in .parquet or .parq,
// else csv.
func TableFormat(path, flag string) (Format, error) {
	if flag != "" {
		return TableFormatValues.Parse(flag)
	}
	if isParquetName(path) {
		return FormatParquet, nil
	}
	return FormatCSV, nil
}

func isParquetName(path string) bool {
	ext := strings.ToLower(filepath.Ext(path))
	return ext == ".parquet" || ext == ".parq"
}

// readFormat is the format a file of a csv or parquet configuration is
// read in: its extension decides where it is .parquet/.parq or
// .csv/.tsv, so that predict reads either whatever the model was trained
// on. Other formats have their own layouts and keep them.
func (c *Config) readFormat(path string) Format {
	if c.Format != FormatCSV && c.Format != FormatParquet {
		return c.Format
	}
	switch ext := strings.ToLower(filepath.Ext(path)); {
	case isParquetName(path):
		return FormatParquet
	case ext == ".csv" || ext == ".tsv":
		return FormatCSV
	}
	return c.Format
}
