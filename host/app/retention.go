package app

import (
	"context"
	"fmt"
	"time"

	"github.com/jirasync/jirasync/host/store"
)

// Retention defaults (see host/RATIONALE.md, "Retention").
const (
	DefaultRetention            = 30 * 24 * time.Hour
	DefaultRetentionIgnoredBody = 24 * time.Hour
	// DefaultRetentionDeadFactor: dead deliveries, which an operator may
	// still replay, are kept this many times the retention.
	DefaultRetentionDeadFactor = 3
	DefaultRetentionEvery      = 10 * time.Minute
	DefaultRetentionBatch      = 500
	// retentionPause separates two batches of one run, so that accepts
	// waiting for the database get it in between.
	retentionPause = 100 * time.Millisecond
)

// retentionDefaults fills zero fields and refuses negative ones.
func retentionDefaults(cfg *Config) error {
	r := &cfg.Retention
	for name, d := range map[string]time.Duration{"retention": r.Settled, "ignored body retention": r.IgnoredBody,
		"dead retention": r.Dead, "retention interval": cfg.RetentionEvery} {
		if d < 0 {
			return fmt.Errorf("%s is %v; want a positive duration, or 0 for the default", name, d)
		}
	}
	if r.Settled == 0 {
		r.Settled = DefaultRetention
	}
	if r.IgnoredBody == 0 {
		r.IgnoredBody = DefaultRetentionIgnoredBody
	}
	if r.Dead == 0 {
		r.Dead = DefaultRetentionDeadFactor * r.Settled
	}
	r.Setups = cfg.SetupTimeout
	if r.Batch <= 0 {
		r.Batch = DefaultRetentionBatch
	}
	if cfg.RetentionEvery == 0 {
		cfg.RetentionEvery = DefaultRetentionEvery
	}
	return nil
}

// retentionLoop prunes what retention says is expired: soon after start
// (a host restarted more often than RetentionEvery still prunes), then
// every RetentionEvery, until stop. It runs beside intake, never in its
// way: each batch is one short statement, with a pause between batches.
func (a *App) retentionLoop(stop <-chan struct{}) {
	t := time.NewTimer(min(a.cfg.RetentionEvery, time.Minute))
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		a.prune(stop)
		t.Reset(a.cfg.RetentionEvery)
	}
}

// prune runs batches until none comes back full.
func (a *App) prune(stop <-chan struct{}) {
	start := time.Now()
	total := store.Pruned{}
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		p, err := a.store.Prune(ctx, a.cfg.Retention)
		cancel()
		a.metrics.pruned(p)
		for k, n := range p {
			total[k] += n
		}
		if err != nil {
			a.log.Warn("retention: removing expired rows", "error", err)
			return
		}
		if !p.More(a.cfg.Retention.Batch) {
			break
		}
		select {
		case <-stop:
			return
		case <-time.After(retentionPause):
		}
	}
	args := []any{"elapsed", time.Since(start).Round(time.Millisecond)}
	removed := int64(0)
	for k, n := range total {
		if n > 0 {
			args = append(args, k, n)
			removed += n
		}
	}
	if removed > 0 {
		a.log.Info("retention: expired rows removed", args...)
	}
}
