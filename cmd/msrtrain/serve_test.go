package main

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestServe runs msrtrain serve as a user would: it scores a file's rows
// as predict does, reloads on SIGHUP, and stops cleanly on SIGTERM.
func TestServe(t *testing.T) {
	csvPath, run, predicted := csvRun(t)
	cmd := exec.Command(binary, "serve", "--checkpoint", run, "--addr", "127.0.0.1:0", "--threads", "1")
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	lines := make(chan string, 16)
	var log bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			lines <- sc.Text()
		}
		close(lines)
	}()
	// next returns the next log line that contains want.
	next := func(want string) string {
		t.Helper()
		timeout := time.After(time.Minute)
		for {
			select {
			case l, ok := <-lines:
				require.True(t, ok, "msrtrain serve exited before logging %q:\n%s", want, log.String())
				if strings.Contains(l, want) {
					return l
				}
			case <-timeout:
				t.Fatalf("msrtrain serve logged no %q within a minute:\n%s", want, log.String())
			}
		}
	}
	listening := next("listening on ")
	url := "http://" + strings.TrimPrefix(listening, "listening on ")

	// Every row of the file, each value as the text the file holds.
	f, err := os.Open(csvPath)
	require.NoError(t, err)
	records, err := csv.NewReader(f).ReadAll()
	f.Close()
	require.NoError(t, err)
	var rows []map[string]string
	for _, r := range records[1:] {
		row := map[string]string{}
		for j, h := range records[0] {
			row[h] = r[j]
		}
		rows = append(rows, row)
	}
	body, _ := json.Marshal(map[string]any{"rows": rows})
	scores := func() []float32 {
		t.Helper()
		resp, err := http.Post(url+"/v1/score", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		var out struct{ Scores []float32 }
		require.NoError(t, json.Unmarshal(b, &out))
		return out.Scores
	}
	got := scores()
	require.Len(t, got, len(predicted)-1)
	for i, r := range predicted[1:] {
		want, err := strconv.ParseFloat(r[2], 32)
		require.NoError(t, err)
		assert.InDelta(t, want, got[i], 1e-6, "row %d", i)
	}

	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	next("now serving")
	assert.Equal(t, got, scores(), "the same checkpoint again")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	next("stopped")
	require.NoError(t, cmd.Wait(), "exit status after SIGTERM:\n%s", log.String())
}
