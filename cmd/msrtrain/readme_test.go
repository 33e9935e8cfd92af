package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/msrtrain/msrtrain/train/report/reporttest"
)

// quickStart reads the README's quick start: the commands of its first
// indented block, and the run.yaml it shows.
func quickStart(t *testing.T) (commands []string, runYAML string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(b), "\n## Quick start")
	require.True(t, ok, "README.md has no Quick start section")
	section, _, _ = strings.Cut(section, "\n## ")
	inBlock := false
	for _, line := range strings.Split(section, "\n") {
		if cmd, ok := strings.CutPrefix(line, "    "); ok {
			commands = append(commands, cmd)
			inBlock = true
		} else if inBlock {
			break
		}
	}
	_, rest, ok := strings.Cut(section, "```yaml\n")
	require.True(t, ok, "the Quick start shows no run.yaml")
	runYAML, _, _ = strings.Cut(rest, "```")
	return commands, runYAML
}

// TestReadmeQuickStart runs the README's quick start as a user would, in a
// copy of the repository's layout: every command must succeed, data init
// must write the run.yaml the README shows, and the commands on the run
// must work from another directory too.
func TestReadmeQuickStart(t *testing.T) {
	commands, wantYAML := quickStart(t)
	require.NotEmpty(t, commands)
	repo := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(repo, "bin"), 0o755))
	require.NoError(t, os.Symlink(binary, filepath.Join(repo, "bin", "msrtrain")))
	sample := filepath.Join("data", "testdata", "douban_sample", "douban_sample.csv")
	b, err := os.ReadFile(filepath.Join("..", "..", sample))
	require.NoError(t, err)
	require.NoError(t, os.MkdirAll(filepath.Join(repo, filepath.Dir(sample)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(repo, sample), b, 0o644))
	for _, c := range commands {
		cmd := exec.Command("sh", "-c", c)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "README quick start: %s\n%s", c, out)
	}
	got, err := os.ReadFile(filepath.Join(repo, "run.yaml"))
	require.NoError(t, err)
	assert.Equal(t, wantYAML, string(got), "the run.yaml the README shows")
	scores, err := os.ReadFile(filepath.Join(repo, "scores.csv"))
	require.NoError(t, err)
	assert.Equal(t, 3001, strings.Count(string(scores), "\n"), "a header and a score per row")

	// From anywhere else, the run's relative data path still resolves.
	run := filepath.Join(repo, "runs", "clicks")
	elsewhere := t.TempDir()
	for _, args := range [][]string{
		{"eval", "--checkpoint", run, "--threads", "1"},
		{"report", "--threads", "1", run},
		{"knowledge", "explain", "--checkpoint", run, "--user", "1691", "--threads", "1"},
		{"predict", "--checkpoint", run, "--input", filepath.Join(repo, "clicks.csv"), "--output", "here.csv", "--threads", "1"},
	} {
		_, errOut, code := runIn(t, elsewhere, args...)
		assert.Zero(t, code, "msrtrain %s from another directory: %s", strings.Join(args, " "), errOut)
	}
	assert.FileExists(t, filepath.Join(elsewhere, "here.csv"))
	_, err = reporttest.CheckPage(filepath.Join(run, "report.html"))
	assert.NoError(t, err)
}
