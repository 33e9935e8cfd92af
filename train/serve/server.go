// Package serve is msrtrain's scoring server: HTTP/JSON requests of raw
// rows, encoded with the model's own vocabularies, gathered across
// concurrent requests into micro-batches that one torch goroutine scores
// on the frozen model; hot reload, graceful shutdown and Prometheus metrics.
package serve

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server; zero fields take DefaultOptions' values.
type Options struct {
	// Checkpoint is the model loaded at start, and again by a reload that
	// names none (a run directory is resolved to its best checkpoint anew).
	Checkpoint string
	// Load loads a model (CheckpointLoader for checkpoints).
	Load Loader
	// Addr is where the scoring API, health checks and metrics listen.
	Addr string
	// AdminAddr is where the admin endpoints listen; empty turns them off.
	// Off loopback they need AdminToken.
	AdminAddr string
	// AdminToken, when set, must come as "Authorization: Bearer TOKEN" on
	// every admin request.
	AdminToken string
	// MaxBatchRows bounds the rows scored at once; MaxWait is how long the
	// batcher waits for more rows once it holds some (0: it scores what is
	// queued at once, and batches form while the model is busy).
	MaxBatchRows int
	MaxWait      time.Duration
	// MaxRequestRows and MaxBodyBytes bound one request.
	MaxRequestRows int
	MaxBodyBytes   int64
	// RequestTimeout bounds a request's wait for its scores.
	RequestTimeout time.Duration
	// ReadTimeout and WriteTimeout are http.Server's.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// DrainTimeout bounds the wait for requests in flight at shutdown.
	DrainTimeout time.Duration
	// Log receives a line per start, reload and shutdown (nil: discarded).
	Log io.Writer
}

// DefaultOptions are the defaults of Options and of msrtrain serve's flags.
func DefaultOptions() Options {
	return Options{
		Addr:           ":8080",
		MaxBatchRows:   1024,
		MaxWait:        0,
		MaxRequestRows: 1000,
		MaxBodyBytes:   4 << 20,
		RequestTimeout: 10 * time.Second,
		ReadTimeout:    10 * time.Second,
		WriteTimeout:   15 * time.Second,
		DrainTimeout:   30 * time.Second,
	}
}

func (o *Options) fillDefaults() {
	d := DefaultOptions()
	if o.Addr == "" {
		o.Addr = d.Addr
	}
	if o.MaxBatchRows == 0 {
		o.MaxBatchRows = d.MaxBatchRows
	}
	if o.MaxRequestRows == 0 {
		o.MaxRequestRows = d.MaxRequestRows
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = d.MaxBodyBytes
	}
	for _, p := range []struct{ v, d *time.Duration }{
		{&o.RequestTimeout, &d.RequestTimeout}, {&o.ReadTimeout, &d.ReadTimeout},
		{&o.WriteTimeout, &d.WriteTimeout}, {&o.DrainTimeout, &d.DrainTimeout},
	} {
		if *p.v == 0 {
			*p.v = *p.d
		}
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Validate names the first bad option by its msrtrain serve flag.
func (o *Options) Validate() error {
	switch {
	case o.Checkpoint == "":
		return errors.New("--checkpoint: a run or checkpoint directory is needed")
	case o.Load == nil:
		return errors.New("serve: no model loader")
	case o.MaxBatchRows < 1:
		return fmt.Errorf("--max-batch-rows = %d: must be at least 1", o.MaxBatchRows)
	case o.MaxWait < 0:
		return fmt.Errorf("--max-wait = %v: must not be negative", o.MaxWait)
	case o.MaxRequestRows < 1:
		return fmt.Errorf("--max-request-rows = %d: must be at least 1", o.MaxRequestRows)
	case o.MaxBodyBytes < 1:
		return fmt.Errorf("--max-body-bytes = %d: must be at least 1", o.MaxBodyBytes)
	case o.RequestTimeout < 0 || o.ReadTimeout < 0 || o.WriteTimeout < 0 || o.DrainTimeout < 0:
		return errors.New("timeouts must not be negative")
	case o.WriteTimeout <= o.RequestTimeout:
		return fmt.Errorf("--write-timeout = %v must exceed --request-timeout = %v, or answers to slow requests are cut off", o.WriteTimeout, o.RequestTimeout)
	}
	if o.AdminAddr != "" && o.AdminToken == "" {
		loopback, err := isLoopback(o.AdminAddr)
		if err != nil {
			return fmt.Errorf("--admin-addr %q: %w", o.AdminAddr, err)
		}
		if !loopback {
			return fmt.Errorf("--admin-addr %q is not a loopback address: admin endpoints there need a token (MSRTRAIN_ADMIN_TOKEN or --admin-token-file)", o.AdminAddr)
		}
	}
	return nil
}

// isLoopback reports whether a listen address binds only loopback.
func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if host == "localhost" {
		return true, nil
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback(), nil
}

// Server serves one model at a time over HTTP.
type Server struct {
	opts     Options
	batcher  *batcher
	metrics  *metrics
	current  current
	draining atomic.Bool

	pathMu sync.Mutex
	path   string // what a reload without a path loads

	main, admin     *http.Server
	mainLn, adminLn net.Listener
}

// New loads and checks the model, starts the torch goroutine and opens
// the listeners; Run serves.
func New(opts Options) (*Server, error) {
	opts.fillDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, metrics: newMetrics(), path: opts.Checkpoint}
	s.batcher = newBatcher(opts.MaxBatchRows, opts.MaxWait, s.metrics)
	s.batcher.onStop = func() {
		if m := s.current.p.Swap(nil); m != nil {
			m.Close()
		}
	}
	s.batcher.start()
	fail := func(err error) (*Server, error) {
		for _, l := range []net.Listener{s.mainLn, s.adminLn} {
			if l != nil {
				l.Close()
			}
		}
		s.batcher.close()
		return nil, err
	}
	if _, err := s.Reload(""); err != nil {
		return fail(err)
	}
	var err error
	if s.mainLn, err = net.Listen("tcp", opts.Addr); err != nil {
		return fail(fmt.Errorf("--addr: %w", err))
	}
	s.main = s.httpServer(s.mainHandler())
	if opts.AdminAddr != "" {
		if s.adminLn, err = net.Listen("tcp", opts.AdminAddr); err != nil {
			return fail(fmt.Errorf("--admin-addr: %w", err))
		}
		s.admin = s.httpServer(s.adminHandler())
	}
	return s, nil
}

func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: s.opts.ReadTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
	}
}

// Addr is the address the scoring API listens on.
func (s *Server) Addr() string { return s.mainLn.Addr().String() }

// AdminAddr is the admin endpoints' address, "" when they are off.
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// Run serves until ctx is done, then drains: it stops accepting
// connections, waits up to DrainTimeout for the requests in flight to be
// answered, and frees the model.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 2)
	serve := func(srv *http.Server, l net.Listener) {
		if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}
	go serve(s.main, s.mainLn)
	if s.admin != nil {
		go serve(s.admin, s.adminLn)
	}
	fmt.Fprintf(s.opts.Log, "listening on %s\n", s.Addr())
	if s.admin != nil {
		fmt.Fprintf(s.opts.Log, "admin endpoints on %s\n", s.AdminAddr())
	}
	var serveErr error
	select {
	case <-ctx.Done():
		fmt.Fprintln(s.opts.Log, "shutting down: draining requests in flight")
	case serveErr = <-errc:
	}
	s.draining.Store(true)
	drain, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
	defer cancel()
	var errs []error
	for _, srv := range []*http.Server{s.main, s.admin} {
		if srv == nil {
			continue
		}
		if err := srv.Shutdown(drain); err != nil {
			errs = append(errs, fmt.Errorf("draining: %w (requests still in flight after %v)", err, s.opts.DrainTimeout))
		}
	}
	s.batcher.close()
	fmt.Fprintln(s.opts.Log, "stopped")
	return errors.Join(append([]error{serveErr}, errs...)...)
}

func (s *Server) modelName() string {
	if m := s.current.p.Load(); m != nil {
		return m.Name()
	}
	return ""
}

// Reload loads the model at path (when empty, the path loaded last),
// checks it, and swaps it in for new requests; requests in flight finish
// on the model they started with. A model that fails to load or to score
// its check rows is refused, and the old one keeps serving.
func (s *Server) Reload(path string) (string, error) {
	s.pathMu.Lock()
	defer s.pathMu.Unlock()
	if path == "" {
		path = s.path
	}
	var name string
	var err error
	if derr := s.batcher.do(func() { name, err = s.load(path) }); derr != nil {
		return "", derr
	}
	if err != nil {
		s.metrics.reloads.WithLabelValues("refused").Inc()
		if old := s.modelName(); old != "" {
			err = fmt.Errorf("%w (still serving %s)", err, old)
		}
		fmt.Fprintf(s.opts.Log, "reload of %s refused: %v\n", path, err)
		return "", err
	}
	s.path = path
	s.metrics.reloads.WithLabelValues("swapped").Inc()
	fmt.Fprintf(s.opts.Log, "now serving %s\n", name)
	return name, nil
}

// load runs on the torch goroutine.
func (s *Server) load(path string) (name string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("loading %s panicked: %v", path, p)
		}
	}()
	m, err := s.opts.Load(path)
	if err != nil {
		return "", err
	}
	if err := checkModel(m); err != nil {
		m.Close()
		return "", err
	}
	old := s.modelName()
	s.current.swap(newServed(m, s.retire))
	s.metrics.inService(m.Name(), old)
	return m.Name(), nil
}

// retire closes a swapped-out model once its last request is done, on the
// torch goroutine (release may run there, so it must not wait for it).
func (s *Server) retire(m *served) { go s.batcher.do(m.Close) }

func (s *Server) mainHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/score", s.handleScore)
	mux.HandleFunc("/v1/model", s.handleModel)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/readyz", s.handleReady)
	mux.Handle("/metrics", s.metrics.handler())
	return mux
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.draining.Load():
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	case s.current.p.Load() == nil:
		http.Error(w, "no model", http.StatusServiceUnavailable)
	default:
		io.WriteString(w, "ok\n")
	}
}

// handleScore answers POST /v1/score: {"rows": [{field: value, ...}, ...]}
// → {"model": NAME, "scores": [probability per row, in order]}.
func (s *Server) handleScore(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rows, err := s.score(w, r)
	if err != nil {
		s.metrics.errors.WithLabelValues(string(err.Kind)).Inc()
		if err.Kind != kindClientGone {
			writeError(w, err)
		}
		s.metrics.answered(err.status, time.Since(start).Seconds(), 0)
		return
	}
	s.metrics.answered(http.StatusOK, time.Since(start).Seconds(), rows)
}

func (s *Server) score(w http.ResponseWriter, r *http.Request) (int, *requestError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return 0, &requestError{status: http.StatusMethodNotAllowed, Kind: kindMethod, Message: r.Method + " /v1/score: use POST"}
	}
	m, err := s.current.acquire()
	if err != nil {
		return 0, unavailable(err.Error())
	}
	defer m.release()
	body, rerr := readBody(w, r, s.opts.MaxBodyBytes)
	if rerr != nil {
		return 0, rerr
	}
	raw, rerr := parseRows(body, m.Schema(), s.opts.MaxRequestRows)
	if rerr != nil {
		return 0, rerr
	}
	t, err := m.Encode(raw)
	if err != nil {
		if rerr := rowError(err); rerr != nil {
			if rerr.Kind == kindUnknownScenario {
				rerr.Message += fmt.Sprintf(" (the model knows %s)", strings.Join(m.Schema().ScenarioNames(), ", "))
			}
			return 0, rerr
		}
		return 0, internal(fmt.Errorf("encoding: %w", err))
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.RequestTimeout)
	defer cancel()
	scores, err := s.batcher.submit(ctx, m, t)
	switch {
	case err == nil:
	case r.Context().Err() != nil:
		return 0, &requestError{status: 499, Kind: kindClientGone, Message: "the client closed the connection"}
	case errors.Is(err, context.DeadlineExceeded):
		return 0, &requestError{status: http.StatusServiceUnavailable, Kind: kindTimeout,
			Message: fmt.Sprintf("not scored within --request-timeout %v: the server is overloaded", s.opts.RequestTimeout)}
	case errors.Is(err, errStopped):
		return 0, unavailable(err.Error())
	default:
		return 0, internal(err)
	}
	out := make([]byte, 0, 32+len(m.nameJSON)+12*len(scores))
	out = append(out, `{"model":`...)
	out = append(out, m.nameJSON...)
	out = append(out, `,"scores":[`...)
	for i, p := range scores {
		if math.IsNaN(float64(p)) || math.IsInf(float64(p), 0) {
			return 0, internal(fmt.Errorf("model %s scored row %d as %v", m.Name(), i, p))
		}
		if i > 0 {
			out = append(out, ',')
		}
		out = strconv.AppendFloat(out, float64(p), 'g', -1, 32)
	}
	out = append(out, "]}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.Write(out)
	return len(scores), nil
}

func unavailable(msg string) *requestError {
	return &requestError{status: http.StatusServiceUnavailable, Kind: kindUnavailable, Message: msg}
}

func internal(err error) *requestError {
	return &requestError{status: http.StatusInternalServerError, Kind: kindInternal, Message: err.Error()}
}

func writeError(w http.ResponseWriter, e *requestError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	json.NewEncoder(w).Encode(struct {
		Error *requestError `json:"error"`
	}{e})
}

// modelDescription is GET /v1/model: what a request row must hold.
type modelDescription struct {
	Model         string   `json:"model"`
	ScenarioField string   `json:"scenario_field"`
	Scenarios     []string `json:"scenarios"`
	Categorical   []string `json:"categorical"` // the user first, then the item
	Numeric       []string `json:"numeric"`
}

func (s *Server) handleModel(w http.ResponseWriter, r *http.Request) {
	m, err := s.current.acquire()
	if err != nil {
		writeError(w, unavailable(err.Error()))
		return
	}
	defer m.release()
	sc := m.Schema()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(modelDescription{Model: m.Name(), ScenarioField: scenarioField,
		Scenarios: sc.ScenarioNames(), Categorical: sc.Categorical, Numeric: append([]string{}, sc.Numeric...)})
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/admin/reload", s.handleReload)
	return mux
}

// handleReload answers POST /admin/reload with an optional body
// {"checkpoint": PATH} (default: the path loaded last).
func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	if s.opts.AdminToken != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.opts.AdminToken)) != 1 {
			writeError(w, &requestError{status: http.StatusUnauthorized, Kind: kindUnauthorized, Message: "admin endpoints need Authorization: Bearer TOKEN"})
			return
		}
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, &requestError{status: http.StatusMethodNotAllowed, Kind: kindMethod, Message: r.Method + " /admin/reload: use POST"})
		return
	}
	body, rerr := readBody(w, r, 1<<16)
	if rerr != nil {
		writeError(w, rerr)
		return
	}
	var req struct {
		Checkpoint string `json:"checkpoint"`
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			writeError(w, badRequest(kindMalformedJSON, `%v: want {"checkpoint": PATH} or no body`, err))
			return
		}
	}
	name, err := s.Reload(req.Checkpoint)
	if err != nil {
		status := http.StatusUnprocessableEntity
		if errors.Is(err, errStopped) {
			status = http.StatusServiceUnavailable
		}
		writeError(w, &requestError{status: status, Kind: kindReloadRefused, Message: err.Error()})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"model": name})
}
