package app

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/jirasync/jirasync/host/internal/engine"
	"github.com/jirasync/jirasync/host/store"
)

// metrics are the host's Prometheus metrics, on a registry of the App's
// own so that several hosts can live in one process (tests).
type metrics struct {
	reg       *prometheus.Registry
	received  *prometheus.CounterVec
	events    *prometheus.CounterVec
	processed *prometheus.CounterVec
	latency   prometheus.Histogram
	retries   prometheus.Counter
	calls     *prometheus.HistogramVec
	removed   *prometheus.CounterVec
}

func newMetrics(st *store.Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jirasync_deliveries_received_total",
			Help: "Webhook requests by what became of them: stored, duplicate, or refused (and why).",
		}, []string{"result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jirasync_events_received_total",
			Help: "Platform events (POST /api/v1/events, App.PublishEvent, the built-in platform's own changes) by what became of them: stored, duplicate, or refused (and why).",
		}, []string{"result"}),
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jirasync_deliveries_processed_total",
			Help: "Processing attempts by the delivery's kind (webhook or event) and the status they left it in.",
		}, []string{"kind", "status"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "jirasync_delivery_processing_seconds",
			Help:    "Time of one processing attempt: plugin, host functions, Jira and the commit.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "jirasync_delivery_retries_total",
			Help: "Attempts that ended in a scheduled retry.",
		}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "jirasync_plugin_call_seconds",
			Help:    "Duration of plugin export calls, host functions included, by export and result.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}, []string{"export", "result"}),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "jirasync_retention_removed_total",
			Help: "Rows removed by retention, by table; deliveries.body counts bodies dropped from ignored deliveries that stay.",
		}, []string{"table"}),
	}
	m.reg.MustRegister(m.received, m.events, m.processed, m.latency, m.retries, m.calls, m.removed,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "jirasync_queue_depth",
		Help: "Deliveries stored and not settled: pending, processing, or waiting for a retry.",
	}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := st.QueueDepth(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	}))
	return m
}

// observeCall is the engine's call hook.
func (m *metrics) observeCall(export string, elapsed time.Duration, err error) {
	result := "ok"
	var f *engine.Fault
	switch {
	case errors.As(err, &f):
		result = f.Reason
	case err != nil:
		result = "error"
	}
	m.calls.WithLabelValues(export, result).Observe(elapsed.Seconds())
}

// registerEngine adds the sandbox's instance counters.
func (m *metrics) registerEngine(eng engine.Engine) {
	if w, ok := eng.(*engine.Wasm); ok {
		stat := func(f func(engine.Stats) int64) func() float64 {
			return func() float64 { return float64(f(w.Stats())) }
		}
		m.reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "jirasync_plugin_instances",
				Help: "Plugin instances alive (idle or in a call)."}, stat(func(s engine.Stats) int64 { return s.Created - s.Dropped })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "jirasync_plugin_calls_total",
				Help: "Plugin export calls."}, stat(func(s engine.Stats) int64 { return s.Calls })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "jirasync_plugin_faults_total",
				Help: "Plugin calls that trapped, timed out or answered garbage; each drops its instance."},
				stat(func(s engine.Stats) int64 { return s.Faults })),
		)
	}
}

// Processed implements pipeline.Observer.
func (m *metrics) Processed(kind, status string, elapsed time.Duration) {
	m.processed.WithLabelValues(kind, status).Inc()
	m.latency.Observe(elapsed.Seconds())
}

// Retried implements pipeline.Observer.
func (m *metrics) Retried() { m.retries.Inc() }

// pruned counts what a retention batch removed.
func (m *metrics) pruned(p store.Pruned) {
	for table, n := range p {
		m.removed.WithLabelValues(table).Add(float64(n))
	}
}

// metricsHandler serves /metrics: open by default (counts and latencies,
// no payloads, names or tokens), behind the admin token with MetricsAuth.
func (a *App) metricsHandler() http.Handler {
	h := promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{})
	if a.cfg.MetricsAuth {
		return a.admin(h.ServeHTTP)
	}
	return h
}
