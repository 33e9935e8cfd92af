package data

import (
	"bufio"
	"encoding/csv"
	"io"
	"strconv"

	pq "github.com/msrtrain/msrtrain/data/parquet"
)

// WriteCSV writes raw rows as a CSV file with a header (scenario, the
// categorical fields, numeric fields, labels, and time when present) that
// the generic reader loads back with CSVConfig(raw).
func WriteCSV(w io.Writer, raw *Raw) error {
	bw := bufio.NewWriter(w)
	cw := csv.NewWriter(bw)
	header := append([]string{"scenario"}, raw.catNames()...)
	header = append(header, raw.numNames()...)
	header = append(header, raw.labelNames()...)
	if raw.Time != nil {
		header = append(header, "time")
	}
	if err := cw.Write(header); err != nil {
		return err
	}
	rec := make([]string, len(header))
	for i := range raw.Len() {
		k := 0
		put := func(s string) { rec[k] = s; k++ }
		put(raw.Scenario.Dict.Strings[raw.Scenario.Codes[i]])
		for _, c := range raw.Cat {
			put(c.Dict.Strings[c.Codes[i]])
		}
		for _, cols := range [][]*NumColumn{raw.Num, raw.Labels} {
			for _, c := range cols {
				put(strconv.FormatFloat(float64(c.Values[i]), 'g', -1, 32))
			}
		}
		if raw.Time != nil {
			put(strconv.FormatInt(raw.Time[i], 10))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	return bw.Flush()
}

// CSVConfig is the data configuration that reads WriteCSV's output at path.
func CSVConfig(raw *Raw, path string) Config {
	cfg := DefaultConfig()
	cfg.Format = FormatCSV
	cfg.Path = path
	cfg.Columns.Scenario = Col("scenario")
	names := raw.catNames()
	cfg.Columns.User, cfg.Columns.Item = Col(names[0]), Col(names[1])
	for _, n := range names[2:] {
		cfg.Columns.Categorical = append(cfg.Columns.Categorical, Col(n))
	}
	for _, n := range raw.numNames() {
		cfg.Columns.Numeric = append(cfg.Columns.Numeric, Col(n))
	}
	for _, n := range raw.labelNames() {
		cfg.Columns.Labels = append(cfg.Columns.Labels, Col(n))
	}
	if raw.Time != nil {
		cfg.Columns.Time = Col("time")
	}
	return cfg
}

// WriteParquet writes raw rows as a Parquet file with WriteCSV's columns
// (text as strings, numbers and labels as floats, time as integers), which
// the parquet reader loads back with ParquetConfig(raw).
func WriteParquet(w io.Writer, raw *Raw) error {
	text := func(c *CatColumn) pq.WriteColumn {
		return pq.WriteColumn{Name: c.Name, Text: func(i int) string { return c.Dict.Strings[c.Codes[i]] }}
	}
	cols := []pq.WriteColumn{text(&raw.Scenario)}
	for _, c := range raw.Cat {
		cols = append(cols, text(c))
	}
	for _, c := range append(append([]*NumColumn{}, raw.Num...), raw.Labels...) {
		cols = append(cols, pq.WriteColumn{Name: c.Name, Float: c.Values})
	}
	if raw.Time != nil {
		cols = append(cols, pq.WriteColumn{Name: "time", Int: raw.Time})
	}
	return pq.Write(w, raw.Len(), cols)
}

// ParquetConfig is the data configuration that reads WriteParquet's output at path.
func ParquetConfig(raw *Raw, path string) Config {
	cfg := CSVConfig(raw, path)
	cfg.Format = FormatParquet
	return cfg
}
