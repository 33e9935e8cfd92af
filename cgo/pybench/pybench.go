// Package pybench runs a PyTorch baseline (a python3-torch script) beside a
// Go benchmark, so that both sides are timed in the same run with the same
// thread and allocator settings. The script prints a banner line when ready,
// then answers each request line with "ms_per_step <value>".
package pybench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Python is the interpreter with Debian's torch (the python3 on PATH may be another).
const Python = "/usr/bin/python3"

// Process is a running baseline script.
type Process struct {
	Banner string // the script's first line
	script string
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Scanner
}

// Settings are the runtime settings the Go side of a benchmark runs with,
// which the baseline gets too.
type Settings struct {
	IntraOpThreads int    // libtorch's intra-op pool; the script's first argument
	BLASThreads    int    // OPENBLAS_NUM_THREADS
	Tunables       string // GLIBC_TUNABLES (glibc allocator settings); "" leaves glibc's defaults
}

// Start runs script under Python with the same settings as the Go side.
func Start(script string, set Settings, args ...string) (*Process, error) {
	if err := exec.Command(Python, "-c", "import torch").Run(); err != nil {
		return nil, fmt.Errorf("%s cannot import torch (%v); install python3-torch for the baseline", Python, err)
	}
	return StartCommand(script, set, Python, append([]string{script, strconv.Itoa(set.IntraOpThreads)}, args...)...)
}

// StartCommand runs any program that speaks the same protocol (a Go
// benchmark's own worker process, say) with the same settings; name is
// what errors call it.
func StartCommand(name string, set Settings, program string, args ...string) (*Process, error) {
	cmd := exec.Command(program, args...)
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS="+strconv.Itoa(set.BLASThreads),
		"OMP_NUM_THREADS="+strconv.Itoa(set.IntraOpThreads))
	if set.Tunables != "" {
		cmd.Env = append(cmd.Env, "GLIBC_TUNABLES="+set.Tunables)
	}
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{script: name, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if !p.out.Scan() {
		p.Close()
		return nil, fmt.Errorf("%s did not start: %v", name, p.out.Err())
	}
	p.Banner = p.out.Text()
	return p, nil
}

// Settle waits until the BLAS threads of whichever side ran last have gone
// to sleep. OpenBLAS's workers spin for about 2^28 cycles (~0.1 s) after
// their last product, so without it the side measured next shares the
// cores with the other process's spinning threads. Call it before timing
// the Go side; Measure calls it before the baseline.
func Settle() { time.Sleep(300 * time.Millisecond) }

// Measure sends one request line and returns the milliseconds per step it answers.
func (p *Process) Measure(request string) (float64, error) {
	answer, err := p.Ask(request)
	if err != nil {
		return 0, err
	}
	return answer["ms_per_step"], nil
}

// Ask sends one request line (after Settle) and returns the answer's
// "name value" pairs; the first must be ms_per_step.
func (p *Process) Ask(request string) (map[string]float64, error) {
	Settle()
	if _, err := fmt.Fprintln(p.in, request); err != nil {
		return nil, err
	}
	if !p.out.Scan() {
		return nil, fmt.Errorf("%s stopped answering: %v", p.script, p.out.Err())
	}
	f := strings.Fields(p.out.Text())
	if len(f) < 2 || len(f)%2 != 0 || f[0] != "ms_per_step" {
		return nil, fmt.Errorf("%s: unexpected answer %q", p.script, p.out.Text())
	}
	answer := map[string]float64{}
	for i := 0; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i+1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: answer %q: %w", p.script, p.out.Text(), err)
		}
		answer[f[i]] = v
	}
	return answer, nil
}

// Close ends the script.
func (p *Process) Close() {
	p.in.Close()
	p.cmd.Wait()
}
