package data

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	pq "github.com/msrtrain/msrtrain/data/parquet"
)

// configPath is one file or directory a data config names, with its key.
type configPath struct {
	key  string // data.path, data.files[1], data.train, ...
	path *string
}

// pathKeys lists the paths of c in the order the reader uses them.
func (c *Config) pathKeys() []configPath {
	out := []configPath{{"data.path", &c.Path}}
	for i := range c.Files {
		out = append(out, configPath{fmt.Sprintf("data.files[%d]", i), &c.Files[i]})
	}
	return append(out, configPath{"data.train", &c.Train}, configPath{"data.valid", &c.Valid}, configPath{"data.test", &c.Test})
}

// ResolvePaths makes every relative path of c absolute, joined to base (a
// config file's directory), or to the working directory when base is "".
// A run stores its configuration resolved, so that eval, predict and
// report read the same files from any directory.
func (c *Config) ResolvePaths(base string) error {
	for _, p := range c.pathKeys() {
		abs, err := ResolvePath(base, *p.path)
		if err != nil {
			return fmt.Errorf("%s: %w", p.key, err)
		}
		*p.path = abs
	}
	return nil
}

// ResolvePath is path made absolute against base (the working directory
// when base is ""); "" stays "".
func ResolvePath(base, path string) (string, error) {
	if path == "" || filepath.IsAbs(path) {
		return path, nil
	}
	if base != "" {
		path = filepath.Join(base, path)
	}
	return filepath.Abs(path)
}

// CheckPaths names the config key of a file or directory that is not
// there (or, for Parquet, a glob pattern that matches nothing), before
// any reading starts.
func (c *Config) CheckPaths() error {
	if c.Format.Generated() {
		return nil
	}
	for _, p := range c.pathKeys() {
		if *p.path == "" {
			continue
		}
		if c.Format == FormatParquet && pq.IsPattern(*p.path) {
			if matches, err := filepath.Glob(*p.path); err != nil || len(matches) == 0 {
				return fmt.Errorf("%s: %s: no file matches the pattern", p.key, *p.path)
			}
			continue
		}
		if _, err := os.Stat(*p.path); err != nil {
			var pe *fs.PathError
			if errors.As(err, &pe) {
				err = pe.Err
			}
			return fmt.Errorf("%s: %s: %w", p.key, *p.path, err)
		}
	}
	return nil
}
