package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/msrtrain/msrtrain/data"
	"github.com/msrtrain/msrtrain/train"
)

func dataInitCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "guess a starter run.yaml for a CSV or TSV file (every guess commented) and check it with the reader",
		ArgsUsage: "FILE.csv",
		Description: `Sniffs the delimiter, the header, the quoting, each column's kind and the likely scenario, user,
item and label columns (by name, then by content), writes a run configuration that says what each
guess rests on, then reads the whole file with it as train will.
Examples:
   msrtrain data init clicks.csv                     # print it
   msrtrain data init --output run.yaml clicks.csv   # write it (its paths are relative to run.yaml)
   msrtrain train -c run.yaml --out runs/clicks`,
		Flags: withGlobals(&cli.StringFlag{Name: "output", Value: stdoutName, Usage: "run config to write, or - for standard output"}),
		Action: func(c *cli.Context) error {
			file, err := oneArg(c, "data init", "one CSV or TSV file")
			if err != nil {
				return err
			}
			output := c.String("output")
			s, err := data.SniffCSV(file)
			if err != nil {
				return usage(err)
			}
			path, err := configRelativePath(file, output)
			if err != nil {
				return err
			}
			var b bytes.Buffer
			sampled := fmt.Sprintf("its first %d rows", s.Rows)
			if s.SampledAll {
				sampled = fmt.Sprintf("all %d of its rows", s.Rows)
			}
			next := "msrtrain train -c run.yaml"
			if output != stdoutName {
				next = "msrtrain train -c " + output
			}
			fmt.Fprintf(&b, "# A starter configuration for %s, guessed by `msrtrain data init` from\n", filepath.Base(file))
			fmt.Fprintf(&b, "# %s. Each \"guess\" comment says what it rests on: check those.\n", sampled)
			fmt.Fprintf(&b, "# Paths are relative to this file. Then: %s --out runs/%s\n", next, strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)))
			if err := s.WriteYAML(&b, path); err != nil {
				return err
			}
			if err := writeOutput(output, func(w io.Writer) error { _, err := w.Write(b.Bytes()); return err }); err != nil {
				return err
			}
			return checkStarterConfig(output, b.Bytes())
		},
	}
}

// configRelativePath is how a config written to output names file: relative
// to output's directory, or absolute when the config goes to standard
// output (whose directory is unknown).
func configRelativePath(file, output string) (string, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", err
	}
	if output == stdoutName {
		return abs, nil
	}
	dir, err := filepath.Abs(filepath.Dir(output))
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(dir, abs); err == nil {
		return rel, nil
	}
	return abs, nil
}

// checkStarterConfig reads the data as train would with the config data
// init wrote, and says on stderr what it read or why it could not.
func checkStarterConfig(output string, text []byte) error {
	path := output
	if output == stdoutName {
		f, err := os.CreateTemp("", "msrtrain-init-*.yaml")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		if _, err := f.Write(text); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		path = f.Name()
	}
	fail := func(err error) error {
		where := "the config above"
		if output != stdoutName {
			where = output
		}
		return fmt.Errorf("checking the guesses: %w\nedit %s (its comments say what each guess rests on), then check it with: msrtrain data validate -c %s", err, where, output)
	}
	cfg, err := train.LoadConfig(path, nil)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		return fail(err)
	}
	sp, err := loadSplits(cfg)
	if err != nil {
		return fail(err)
	}
	var scen []string
	for _, st := range sp.Stats {
		scen = append(scen, fmt.Sprintf("%s (%d rows, %.0f%% positive)", st.Name, st.Rows, 100*st.PositiveRate))
	}
	fmt.Fprintf(os.Stderr, "checked with the reader: %d rows (train %d, valid %d, test %d); training scenarios: %s\n",
		splitRows(sp), sp.Rows(data.Train), sp.Rows(data.Valid), sp.Rows(data.Test), strings.Join(scen, ", "))
	if sp.Skipped.Count > 0 {
		fmt.Fprintln(os.Stderr, sp.Skipped)
	}
	return nil
}
