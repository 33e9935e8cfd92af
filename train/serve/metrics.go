package serve

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, in a registry of its own
// (with the Go runtime's and the process's) so that servers in one process
// do not share them.
type metrics struct {
	registry     *prometheus.Registry
	requests     *prometheus.CounterVec // by status code
	rows         prometheus.Counter
	errors       *prometheus.CounterVec // by kind
	latency      prometheus.Histogram
	batchRows    prometheus.Histogram
	batchSeconds prometheus.Histogram
	reloads      *prometheus.CounterVec // by result
	model        *prometheus.GaugeVec   // 1 for the model in service
}

func newMetrics() *metrics {
	const ns = "msrtrain_serve"
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "requests_total",
			Help: "Score requests answered, by HTTP status code."}, []string{"code"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "rows_total",
			Help: "Rows scored and returned."}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "errors_total",
			Help: "Failed requests by kind (the kind field of the error response)."}, []string{"kind"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "request_duration_seconds",
			Help:    "Time from a score request's arrival to its answer.",
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 18)}),
		batchRows: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "batch_rows",
			Help:    "Rows per micro-batch scored at once.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "batch_duration_seconds",
			Help:    "Time the model took to score one micro-batch.",
			Buckets: prometheus.ExponentialBuckets(20e-6, 2, 18)}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "reloads_total",
			Help: "Model reloads by result: swapped in, or refused with the old model kept."}, []string{"result"}),
		model: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Name: "model_info",
			Help: "1 for the model new requests are scored with."}, []string{"model"}),
	}
	m.registry.MustRegister(m.requests, m.rows, m.errors, m.latency, m.batchRows, m.batchSeconds, m.reloads, m.model,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// answered counts a finished score request.
func (m *metrics) answered(code int, seconds float64, rows int) {
	m.requests.WithLabelValues(strconv.Itoa(code)).Inc()
	m.latency.Observe(seconds)
	m.rows.Add(float64(rows))
}

// inService marks name as the model in service, replacing old.
func (m *metrics) inService(name, old string) {
	if old != "" && old != name {
		m.model.DeleteLabelValues(old)
	}
	m.model.WithLabelValues(name).Set(1)
}
