// Package atomicfile writes files so that readers and crashes see either the
// old file or the complete new one, never half of one: it writes a temporary
// file beside the target, fsyncs it, renames it over the target and fsyncs
// the directory. The files it makes get the permissions os.Create would
// give (0666 less the process umask), so that run directories on shared
// file systems stay readable by the group.
//
// Output is for a command's --output flag: a path, or "-" (or a terminal, a
// pipe, a device) that is written in place and never fsynced, since fsync
// on a pipe fails.
package atomicfile

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// TempGlob matches the temporary files Write leaves behind when a process
// dies mid-write, for directories that clean them up.
const TempGlob = ".*.tmp-*"

// Write replaces path with what write produces, atomically.
func Write(path string, write func(w io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file private (0600); a file written in place
	// would have had 0666 less the umask.
	if err = f.Chmod(Mode()); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = write(bw); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return SyncDir(dir)
}

// WriteBytes replaces path with b, atomically.
func WriteBytes(path string, b []byte) error {
	return Write(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// WriteJSON replaces path with v as indented JSON and a final newline, atomically.
func WriteJSON(path string, v any) error {
	return Write(path, func(w io.Writer) error { return EncodeJSON(w, v) })
}

// EncodeJSON writes v as WriteJSON lays it out: two-space indents, HTML
// left unescaped (prompts and reasoning read as written), a final newline.
func EncodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// SyncDir fsyncs a directory so that a rename or create inside it survives a
// crash. File systems that cannot sync directories are tolerated.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// Output writes a command's output: to stdout when path is "-", in place
// (no rename, no fsync) when path names something other than a regular file
// (/dev/stdout, a named pipe, a terminal), and atomically with Write
// otherwise, so that a failed command leaves no half-written file.
func Output(path string, stdout io.Writer, write func(w io.Writer) error) error {
	if path == "-" {
		bw := bufio.NewWriter(stdout)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		bw := bufio.NewWriter(f)
		err = write(bw)
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	return Write(path, write)
}

// Mode is the permission Write gives new files: 0666 less the process
// umask, read once.
func Mode() fs.FileMode { return 0o666 &^ umask() }
