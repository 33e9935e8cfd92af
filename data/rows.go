package data

import (
	"os"

	pq "github.com/msrtrain/msrtrain/data/parquet"
)

// rowReader reads the rows of one file into Raws, in blocks if asked
// (streaming reads a block into a new Raw at a time): a csvReader or a
// parquetReader.
type rowReader interface {
	// into directs the following rows to raw.
	into(raw *Raw) error
	// read appends up to limit rows (all when limit <= 0) and returns how
	// many; 0 means the file is done.
	read(limit int) (int, error)
	// emptyErr is the error for a file that gave no rows, nil where that
	// is allowed.
	emptyErr() error
	close()
}

// readWhole appends the rows of r to raw, up to maxRows when it is
// positive, and returns how many; a file that gave none is r.emptyErr().
func readWhole(r rowReader, raw *Raw, maxRows int) (int, error) {
	if err := r.into(raw); err != nil {
		return 0, err
	}
	n, err := r.read(maxRows)
	if err == nil && n == 0 {
		err = r.emptyErr()
	}
	return n, err
}

// openRows opens one file of the dataset for reading in blocks.
func (c *Config) openRows(file string) (rowReader, error) {
	if c.Format == FormatParquet {
		parts, err := pq.Expand([]string{file})
		if err != nil {
			return nil, err
		}
		return openParquet(parts[0], &c.Columns, c.parquetOptions())
	}
	o, err := c.readOptions(file)
	if err != nil {
		return nil, err
	}
	fh, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	r, err := openCSV(file, fh, &c.Columns, o)
	if err != nil {
		fh.Close()
		return nil, err
	}
	r.closer = fh
	return r, nil
}

// dataFiles lists the files of paths: for Parquet, directories and glob
// patterns are expanded (see parquet.Expand).
func (c *Config) dataFiles(paths []string) ([]string, error) {
	if c.Format != FormatParquet || len(paths) == 0 {
		return paths, nil
	}
	parts, err := pq.Expand(paths)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = p.Path
	}
	return out, nil
}

func (c *csvReader) close() {
	if c.closer != nil {
		c.closer.Close()
	}
}
