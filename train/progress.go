package train

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// IsTerminal reports whether f is an interactive terminal (progress bars) or not (log lines).
func IsTerminal(f *os.File) bool { return term.IsTerminal(int(f.Fd())) }

// progressWriter is where long preparations (knowledge) draw their bar; nil without a terminal.
func progressWriter(o RunOptions) io.Writer {
	if o.Progress {
		return o.Log
	}
	return nil
}

// progress shows training progress: a bar with samples/s and ETA on a
// terminal, plain periodic lines otherwise.
type progress struct {
	bar      *progressbar.ProgressBar
	log      io.Writer
	every    int
	total    int
	lossEWMA float64
	started  bool
}

func newProgress(o RunOptions, log io.Writer, total, done, every int) *progress {
	p := &progress{log: log, every: every, total: total}
	if o.Progress {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(log),
			progressbar.OptionSetDescription("training"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetItsString("steps"),
			progressbar.OptionShowIts(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		p.bar.Set(done)
	}
	return p
}

// step shows progress after a step of epoch (from 1).
func (p *progress) step(step, epoch int, loss float64, samples int, elapsed time.Duration) {
	if !p.started {
		p.lossEWMA, p.started = loss, true
	}
	p.lossEWMA = 0.98*p.lossEWMA + 0.02*loss
	rate := float64(samples) / max(elapsed.Seconds(), 1e-9)
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("epoch %d  loss %.4f  %.0f samples/s", epoch, p.lossEWMA, rate))
		p.bar.Set(step)
		return
	}
	if step%p.every == 0 || step == p.total {
		eta := time.Duration(float64(p.total-step) / max(float64(step), 1) * float64(elapsed))
		fmt.Fprintf(p.log, "step %d/%d  epoch %d  loss %.4f  %.0f samples/s  eta %s\n", step, p.total, epoch, p.lossEWMA, rate, eta.Round(time.Second))
	}
}

// pause clears the bar so that tables print cleanly.
func (p *progress) pause() {
	if p.bar != nil {
		p.bar.Clear()
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
}
