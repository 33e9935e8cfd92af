package parquet

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{
		"day=2024-06-01/scenario=search/part-00000.parquet",
		"day=2024-06-01/scenario=search/part-00001.parquet",
		"day=2024-06-01/scenario=a%2Fb/part-00000.parquet",
		"day=2024-06-02/scenario=__HIVE_DEFAULT_PARTITION__/part-00000.parquet",
		"day=2024-06-02/_SUCCESS",
		"day=2024-06-02/.part-00000.parquet.crc",
		"_temporary/0/part-00000.parquet",
	} {
		p := filepath.Join(dir, f)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, nil, 0o644))
	}
	parts, err := Expand([]string{dir})
	require.NoError(t, err)
	var got [][]string
	for _, p := range parts {
		row := []string{p.Path[len(dir)+1:]}
		for _, kv := range p.Partitions {
			row = append(row, kv.Key+"="+kv.Value)
		}
		got = append(got, row)
	}
	assert.Equal(t, [][]string{
		{"day=2024-06-01/scenario=a%2Fb/part-00000.parquet", "day=2024-06-01", "scenario=a/b"},
		{"day=2024-06-01/scenario=search/part-00000.parquet", "day=2024-06-01", "scenario=search"},
		{"day=2024-06-01/scenario=search/part-00001.parquet", "day=2024-06-01", "scenario=search"},
		{"day=2024-06-02/scenario=__HIVE_DEFAULT_PARTITION__/part-00000.parquet", "day=2024-06-02", "scenario="},
	}, got)

	parts, err = Expand([]string{filepath.Join(dir, "day=*", "scenario=search", "*.parquet"), filepath.Join(dir, "day=2024-06-02")})
	require.NoError(t, err)
	require.Len(t, parts, 3, "a pattern, then a directory")
	assert.Equal(t, "part-00001.parquet", filepath.Base(parts[1].Path))

	for _, bad := range []string{filepath.Join(dir, "nope.parquet"), filepath.Join(dir, "*.csv"), filepath.Join(dir, "_temporary", "0", "none")} {
		_, err := Expand([]string{bad})
		assert.Error(t, err, bad)
	}
	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.Mkdir(empty, 0o755))
	_, err = Expand([]string{empty})
	assert.ErrorContains(t, err, "no data files")
}
