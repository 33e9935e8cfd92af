// Command msrtrain trains multi-scenario recommendation models (every
// backbone of model's registry) with LLM4MSR's knowledge-driven meta
// networks on libtorch.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/msrtrain/msrtrain/model"
	"github.com/msrtrain/msrtrain/train"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0"

// usageError marks errors in what the user asked for (flags, config, device): exit status 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usage(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// globalFlags are accepted before the command and after it.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "auto", Usage: "auto, cpu, cuda or cuda:N (auto = CUDA when available)"},
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML run configuration; flags override it"},
		&cli.StringSliceFlag{Name: "set", Usage: "override a config key, e.g. --set train.lr=0.01 (repeatable)"},
		&cli.Int64Flag{Name: "seed", Usage: "seeds libtorch, the data and the shuffle", DefaultText: "the config's seed, 42"},
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "run directory", DefaultText: "the config's out, runs/default"},
		&cli.IntFlag{Name: "threads", Usage: "CPU threads for torch work (the BLAS gets them, libtorch's intra-op pool 1); use 1 on a machine busy with other work", DefaultText: "number of CPUs"},
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:                 "msrtrain",
		Usage:                "train multi-scenario recommenders with LLM4MSR on libtorch",
		Version:              version,
		Description:          appDescription(),
		Flags:                globalFlags(),
		EnableBashCompletion: true,
		// --set model.star.hidden=[32,16] is one override, not two.
		DisableSliceFlagSeparator: true,
		Commands: []*cli.Command{
			trainCommand(), evalCommand(), predictCommand(), exportCommand(), reportCommand(), sweepCommand(), ablateCommand(),
			knowledgeCommand(), dataCommand(), serveCommand(), infoCommand(),
		},
		ExitErrHandler: func(*cli.Context, error) {}, // main decides the exit status
	}
}

// appDescription is the top-level help; the backbones come from the
// registry, so that it lists every one there is.
func appDescription() string {
	names := model.BackboneNames()
	return fmt.Sprintf(`Trains one model on several scenarios with one of %d backbones (model.backbone: %s),
optionally with LLM4MSR's hierarchical meta networks fed by knowledge vectors from an LLM.

Example, on the embedded synthetic data, LLM4MSR on STAR against the bare backbone:
   msrtrain train --baseline
From your own CSV to predictions:
   msrtrain data init --output run.yaml clicks.csv && msrtrain train -c run.yaml --out runs/clicks
   msrtrain predict --checkpoint runs/clicks --input clicks.csv --output scores.csv`,
		len(names), strings.Join(names, ", "))
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Asked for, SIGPIPE no longer kills the process on a write to a closed
	// standard output: the write returns EPIPE (see writeOutput).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	err := newApp().RunContext(ctx, os.Args)
	if err == nil || errors.Is(err, errReaderGone) {
		return
	}
	if msg := err.Error(); msg != "" { // cli.Exit("", n): the command said everything already
		fmt.Fprintln(os.Stderr, "msrtrain:", msg)
	}
	var ue usageError
	var ec cli.ExitCoder
	switch {
	case errors.As(err, &ue) || isFlagError(err):
		os.Exit(2)
	case errors.As(err, &ec):
		os.Exit(ec.ExitCode())
	}
	os.Exit(1)
}

// isFlagError recognises urfave/cli's own errors about flags and commands.
func isFlagError(err error) bool {
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return false
	}
	msg := err.Error()
	for _, p := range []string{"flag provided but not defined", "invalid value", "Required flag", "flag needs an argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// lookup finds a flag set on the command or any parent (global flags may come before or after the command).
func lookup(c *cli.Context, name string) (*cli.Context, bool) {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet(name) {
			return ctx, true
		}
	}
	return nil, false
}

func flagString(c *cli.Context, name, def string) string {
	if ctx, ok := lookup(c, name); ok {
		return ctx.String(name)
	}
	return def
}

// oneArg returns the command's one positional argument. Flags must come
// before it (urfave/cli stops reading flags at the first argument), so
// flags after it are a usage error that shows the order.
func oneArg(c *cli.Context, command, what string) (string, error) {
	args := c.Args().Slice()
	if len(args) > 1 && strings.HasPrefix(args[1], "-") {
		return "", usage(fmt.Errorf("%s: flags go before %s: msrtrain %s %s %s", command, args[0], command, strings.Join(args[1:], " "), args[0]))
	}
	if len(args) != 1 {
		return "", usage(fmt.Errorf("%s takes %s", command, what))
	}
	return args[0], nil
}

// resolveConfig builds the run configuration: defaults, then --config, then --set, then the global flags.
func resolveConfig(c *cli.Context) (train.Config, error) {
	var sets []string
	for _, ctx := range c.Lineage() {
		if ctx.IsSet("set") {
			sets = append(ctx.StringSlice("set"), sets...)
		}
	}
	cfg, err := train.LoadConfig(flagString(c, "config", ""), sets)
	if err != nil {
		return cfg, usage(err)
	}
	if ctx, ok := lookup(c, "seed"); ok {
		cfg.Seed = ctx.Int64("seed")
	}
	if ctx, ok := lookup(c, "out"); ok {
		cfg.Out = ctx.String("out")
	}
	if ctx, ok := lookup(c, "device"); ok {
		cfg.Device = ctx.String("device")
	}
	if ctx, ok := lookup(c, "threads"); ok {
		cfg.Threads = ctx.Int("threads")
	}
	return cfg, usage(cfg.Validate())
}
