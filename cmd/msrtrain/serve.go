package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/msrtrain/msrtrain/train/serve"
)

// adminTokenEnv holds the admin token when --admin-token-file is not given
// (a token on the command line would show in ps).
const adminTokenEnv = "MSRTRAIN_ADMIN_TOKEN"

func serveCommand() *cli.Command {
	d := serve.DefaultOptions()
	return &cli.Command{
		Name:  "serve",
		Usage: "score raw rows over HTTP/JSON with a checkpoint (or an exported directory), batching concurrent requests",
		Description: `POST /v1/score {"rows": [{"scenario": ..., "user_id": ..., "item_id": ..., other fields by name}]}
answers {"model": ..., "scores": [a click probability per row, in order]}; GET /v1/model lists
the fields. /healthz, /readyz and Prometheus /metrics beside them. SIGHUP (or POST /admin/reload
on --admin-addr) loads the checkpoint again, or another, and swaps it in without dropping
requests; SIGTERM or Ctrl-C drains the requests in flight and exits.

Examples:
   msrtrain serve --checkpoint runs/douban --addr :8080
   msrtrain serve --checkpoint exported/douban --addr :8080              # msrtrain export's directory, scored by its TorchScript module
   msrtrain serve --checkpoint runs/douban --admin-addr 127.0.0.1:9090   # then: curl -X POST 127.0.0.1:9090/admin/reload`,
		Flags: withGlobals(checkpointFlag(),
			&cli.StringFlag{Name: "addr", Value: d.Addr, Usage: "where the scoring API, health checks and metrics listen"},
			&cli.StringFlag{Name: "admin-addr", Usage: "where POST /admin/reload listens (off when empty; off loopback it needs a token)"},
			&cli.StringFlag{Name: "admin-token-file", Usage: "file holding the bearer token admin requests must carry", DefaultText: "$" + adminTokenEnv + ", or none"},
			&cli.IntFlag{Name: "max-batch-rows", Value: d.MaxBatchRows, Usage: "most rows scored at once, gathered across concurrent requests"},
			&cli.DurationFlag{Name: "max-wait", Value: d.MaxWait, Usage: "how long to wait for more rows once some are queued (0: score what is queued; batches still form while the model is busy)"},
			&cli.IntFlag{Name: "max-request-rows", Value: d.MaxRequestRows, Usage: "most rows in one request (more: 413)"},
			&cli.Int64Flag{Name: "max-body-bytes", Value: d.MaxBodyBytes, Usage: "largest request body (larger: 413)"},
			&cli.DurationFlag{Name: "request-timeout", Value: d.RequestTimeout, Usage: "longest a request waits for its scores (then 503)"},
			&cli.DurationFlag{Name: "read-timeout", Value: d.ReadTimeout, Usage: "HTTP read timeout"},
			&cli.DurationFlag{Name: "write-timeout", Value: d.WriteTimeout, Usage: "HTTP write timeout (above --request-timeout)"},
			&cli.DurationFlag{Name: "drain-timeout", Value: d.DrainTimeout, Usage: "longest shutdown waits for requests in flight"},
		),
		Action: func(c *cli.Context) error {
			if err := serve.IsModelPath(c.String("checkpoint")); err != nil {
				return usage(err)
			}
			device := flagString(c, "device", "auto")
			if err := checkDevice(device); err != nil {
				return err
			}
			token, err := adminToken(c.String("admin-token-file"))
			if err != nil {
				return usage(err)
			}
			opts := serve.Options{
				Checkpoint:     c.String("checkpoint"),
				Load:           serve.AnyLoader(device, c.Int("threads")),
				Addr:           c.String("addr"),
				AdminAddr:      c.String("admin-addr"),
				AdminToken:     token,
				MaxBatchRows:   c.Int("max-batch-rows"),
				MaxWait:        c.Duration("max-wait"),
				MaxRequestRows: c.Int("max-request-rows"),
				MaxBodyBytes:   c.Int64("max-body-bytes"),
				RequestTimeout: c.Duration("request-timeout"),
				ReadTimeout:    c.Duration("read-timeout"),
				WriteTimeout:   c.Duration("write-timeout"),
				DrainTimeout:   c.Duration("drain-timeout"),
				Log:            os.Stderr,
			}
			if err := opts.Validate(); err != nil {
				return usage(err)
			}
			// Catch SIGHUP before loading, so that one sent early is not fatal.
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			s, err := serve.New(opts)
			if err != nil {
				return err
			}
			go func() {
				for range hup {
					s.Reload("") // it logs the outcome; a refused model leaves the old one serving
				}
			}()
			return s.Run(c.Context)
		},
	}
}

// adminToken reads the token from file, else from $MSRTRAIN_ADMIN_TOKEN.
func adminToken(file string) (string, error) {
	if file == "" {
		return os.Getenv(adminTokenEnv), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--admin-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", errors.New("--admin-token-file: the file is empty")
	}
	return token, nil
}
