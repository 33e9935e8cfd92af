package parquet

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Part is one file of a dataset, with the Hive-style partition values of
// its directories.
type Part struct {
	Path string
	// Partitions are the key=value directories of Path, outermost first.
	Partitions []Partition
}

// Partition is one key=value directory: column Key holds Value for every
// row below it. Value is "" for Hive's __HIVE_DEFAULT_PARTITION__ (null).
type Partition struct{ Key, Value string }

// hiveNull is the directory value Hive and Spark write for a null key.
const hiveNull = "__HIVE_DEFAULT_PARTITION__"

// Expand lists the files of a dataset given as files, directories or glob
// patterns, in that order and sorted within each directory or pattern. A
// directory is read recursively, the way Spark and Hive write datasets:
// files and directories whose names start with "_" or "." (_SUCCESS,
// _metadata, .part-0.crc) are left out. Every key=value directory of a
// file's path becomes a partition. A pattern that matches nothing, a
// missing path and a directory without files are errors.
func Expand(paths []string) ([]Part, error) {
	var out []Part
	for _, p := range paths {
		var files []string
		switch st, err := os.Stat(p); {
		case err == nil && st.IsDir():
			if files, err = walk(p); err != nil {
				return nil, err
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("%s: no data files in the directory", p)
			}
		case err == nil:
			files = []string{p}
		case IsPattern(p):
			matches, err := filepath.Glob(p)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			for _, m := range matches {
				if hidden(filepath.Base(m)) {
					continue
				}
				more, err := Expand([]string{m})
				if err != nil {
					return nil, err
				}
				for _, f := range more {
					files = append(files, f.Path)
				}
			}
			if len(files) == 0 {
				return nil, fmt.Errorf("%s: no file matches the pattern", p)
			}
		default:
			return nil, err
		}
		for _, f := range files {
			part, err := partitions(f)
			if err != nil {
				return nil, err
			}
			out = append(out, Part{Path: f, Partitions: part})
		}
	}
	return out, nil
}

// IsPattern reports whether p is a glob pattern rather than a path.
func IsPattern(p string) bool { return strings.ContainsAny(p, "*?[") }

func hidden(name string) bool { return strings.HasPrefix(name, "_") || strings.HasPrefix(name, ".") }

// walk lists the data files below dir in lexical order.
func walk(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && hidden(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() || (!d.IsDir() && d.Type()&fs.ModeSymlink != 0) {
			files = append(files, p)
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}

// partitions reads the key=value directories of a file's path.
func partitions(path string) ([]Partition, error) {
	var out []Partition
	dirs := strings.Split(filepath.ToSlash(filepath.Dir(path)), "/")
	for _, d := range dirs {
		k, v, ok := strings.Cut(d, "=")
		if !ok || k == "" {
			continue
		}
		key, err := url.PathUnescape(k)
		if err != nil {
			return nil, fmt.Errorf("%s: partition directory %q: %w", path, d, err)
		}
		val, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("%s: partition directory %q: %w", path, d, err)
		}
		if val == hiveNull {
			val = ""
		}
		if i := slices.IndexFunc(out, func(p Partition) bool { return p.Key == key }); i >= 0 {
			out[i].Value = val // the innermost directory wins
			continue
		}
		out = append(out, Partition{key, val})
	}
	return out, nil
}
