// Package pipeline processes stored deliveries: a bounded pool of workers
// claims each delivery, runs the plugin on it, and records the outcome,
// applying the delivery's group changes in the same transaction that marks
// it done. Failures that may pass are retried with exponential backoff and
// jitter; a delivery whose processor died is picked up again when its
// lease expires.
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/host/internal/engine"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/webhook"
)

// Config tunes the pipeline; zero fields take the defaults.
type Config struct {
	Workers int
	// MaxAttempts is how many attempts a delivery gets before it is dead.
	MaxAttempts int
	// BaseBackoff is the wait after the first failed attempt; each further
	// failure doubles it, up to MaxBackoff. The defaults spread 8 attempts
	// over about an hour.
	BaseBackoff time.Duration
	MaxBackoff  time.Duration
	// PollInterval is how often stored deliveries that are due are looked
	// for (retries, and deliveries of a previous run).
	PollInterval time.Duration
	// AttemptTimeout bounds one attempt, host functions and Jira included.
	AttemptTimeout time.Duration
}

// Defaults.
const (
	DefaultMaxAttempts    = 8
	DefaultBaseBackoff    = 15 * time.Second
	DefaultMaxBackoff     = 30 * time.Minute
	DefaultPollInterval   = time.Second
	DefaultAttemptTimeout = 60 * time.Second
)

// Result is what became of an attempt, for whoever waits on it.
type Result struct {
	Delivery   store.Delivery
	Status     string
	HTTPStatus int
	Summary    *abi.Summary
	// EventSummary is a platform event's summary, in place of Summary.
	EventSummary *abi.EventSummary
	// StaleFields names the fields of a done delivery's issue whose
	// changes were not applied, a newer delivery having applied them
	// (store.SummaryStaleFields): the host's, beside the plugin's summary.
	StaleFields []string
	Error       *abi.Error
}

// Observer receives what the pipeline does, for metrics.
type Observer interface {
	// Processed is called per attempt with the delivery's kind
	// (store.KindWebhook or store.KindEvent).
	Processed(kind, status string, elapsed time.Duration)
	Retried()
}

// Pipeline runs the workers. Create it with New, then Start.
type Pipeline struct {
	store    *store.Store
	platform platform.Platform
	external bool // plat keeps its data outside the store's database
	engine   engine.Engine
	log      *slog.Logger
	obs      Observer
	cfg      Config

	queue chan job
	wake  chan struct{} // the poller's signal to idle workers: look for due deliveries
	stop  chan struct{}
	wg    sync.WaitGroup

	mu      sync.Mutex
	waiters map[int64][]chan Result
	running bool
}

type job struct {
	id  int64
	now bool // take it even if its retry is not due (a replay)
}

// New returns a stopped pipeline. Deliveries' assignments are applied to
// plat. When plat is st itself, the built-in platform, they are applied in
// the transaction that marks the delivery done (store.Finish); any other
// platform gets them ahead of that transaction, in each issue's order,
// under a key that makes a repeated apply change nothing
// (applyExternally).
func New(st *store.Store, plat platform.Platform, eng engine.Engine, log *slog.Logger, obs Observer, cfg Config) (*Pipeline, error) {
	if plat == nil {
		return nil, errors.New("pipeline: a platform is required")
	}
	builtin, ok := plat.(*store.Store)
	external := !ok || builtin != st
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	return &Pipeline{store: st, platform: plat, external: external, engine: eng, log: log, obs: obs, cfg: cfg,
		queue: make(chan job, 4*cfg.Workers), wake: make(chan struct{}, cfg.Workers), stop: make(chan struct{}),
		waiters: map[int64][]chan Result{}}, nil
}

// Start starts the workers and the poller. A host that owns its database
// first makes the deliveries its previous run left in flight due again; on
// a shared database they may be another host's, and wait for their leases
// to expire.
func (p *Pipeline) Start(ctx context.Context) error {
	if !p.store.Shared() {
		n, err := p.store.ReleaseLeases(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			p.log.Info("deliveries left in flight by the previous run are due again", "count", n)
		}
	}
	p.mu.Lock()
	p.running = true
	p.mu.Unlock()
	for i := 0; i < p.cfg.Workers; i++ {
		p.wg.Add(1)
		go p.worker()
	}
	p.wg.Add(1)
	go p.poller()
	return nil
}

// Running reports whether the workers run, for readiness.
func (p *Pipeline) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.running
}

// Stop stops taking work and waits for attempts in flight, at most until
// ctx is done. Deliveries not finished stay stored and are taken up by the
// next run.
func (p *Pipeline) Stop(ctx context.Context) error {
	p.mu.Lock()
	if !p.running {
		p.mu.Unlock()
		return nil
	}
	p.running = false
	p.mu.Unlock()
	close(p.stop)
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Wait submits a delivery and waits for the outcome of its next attempt,
// or until ctx is done (then ok is false; the attempt goes on).
func (p *Pipeline) Wait(ctx context.Context, id int64, now bool) (Result, bool) {
	ch := make(chan Result, 1)
	p.mu.Lock()
	p.waiters[id] = append(p.waiters[id], ch)
	p.mu.Unlock()
	defer p.forget(id, ch)
	select {
	case p.queue <- job{id: id, now: now}:
	case <-ctx.Done():
		return Result{}, false
	}
	select {
	case r := <-ch:
		return r, true
	case <-ctx.Done():
		return Result{}, false
	}
}

// Submit asks for an attempt at each delivery soon, without waiting for
// it. One the queue has no room for is left to the poller, which finds it
// due within PollInterval.
func (p *Pipeline) Submit(ids ...int64) {
	for _, id := range ids {
		select {
		case p.queue <- job{id: id}:
		default:
			return
		}
	}
}

func (p *Pipeline) forget(id int64, ch chan Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.waiters[id]
	for i, w := range ws {
		if w == ch {
			ws = append(ws[:i], ws[i+1:]...)
			break
		}
	}
	if len(ws) == 0 {
		delete(p.waiters, id)
	} else {
		p.waiters[id] = ws
	}
}

func (p *Pipeline) notify(r Result) {
	p.mu.Lock()
	ws := p.waiters[r.Delivery.ID]
	delete(p.waiters, r.Delivery.ID)
	p.mu.Unlock()
	for _, w := range ws {
		w <- r // buffered, one result per waiter
	}
}

func (p *Pipeline) worker() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case j := <-p.queue:
			p.attemptJob(j)
		case <-p.wake:
			p.drain()
		}
	}
}

// drain claims and processes due deliveries until none is left, taking
// submitted ones first: a webhook waiting for its answer goes before the
// backlog.
func (p *Pipeline) drain() {
	for {
		select {
		case <-p.stop:
			return
		case j := <-p.queue:
			p.attemptJob(j)
			continue
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.AttemptTimeout)
		d, ok, err := p.store.ClaimNext(ctx, p.lease(), p.cfg.MaxAttempts)
		if errors.Is(err, store.ErrOutOfAttempts) {
			cancel()
			p.settledDead(d, err)
			continue
		}
		if err != nil {
			p.log.Warn("claiming a due delivery", "error", err)
		}
		if !ok {
			cancel()
			return
		}
		p.process(ctx, d)
		cancel()
	}
}

// poller wakes idle workers every PollInterval to take up what is due:
// retries, deliveries of a previous run, and those of a host that died.
func (p *Pipeline) poller() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		for i := 0; i < p.cfg.Workers; i++ {
			select {
			case p.wake <- struct{}{}:
			default: // that many are awake already
			}
		}
	}
}

// lease is how long a claim lasts: longer than the attempt's own time-out,
// so that only a dead processor ever loses one.
func (p *Pipeline) lease() time.Duration { return 2 * p.cfg.AttemptTimeout }

// attemptJob makes one attempt at a submitted delivery, if it can be
// claimed.
func (p *Pipeline) attemptJob(j job) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.AttemptTimeout)
	defer cancel()
	d, ok, err := p.store.Claim(ctx, j.id, p.lease(), p.cfg.MaxAttempts, j.now)
	if errors.Is(err, store.ErrOutOfAttempts) {
		p.settledDead(d, err)
		return
	}
	if err != nil {
		p.log.Warn("claiming delivery", "delivery", j.id, "error", err)
		return
	}
	if !ok {
		p.notifyCurrent(j.id)
		return
	}
	p.process(ctx, d)
}

// process runs a claimed delivery's attempt and records its outcome.
func (p *Pipeline) process(ctx context.Context, d store.Delivery) {
	log := p.log.With("delivery", d.ID, "installation", d.Installation, "issue_key", d.IssueKey, "attempt", d.Attempts)
	start := time.Now()
	var res runResult
	if d.Kind == store.KindEvent {
		res = p.runEvent(ctx, log, d)
	} else {
		res = p.run(ctx, log, d)
		if p.external && res.outcome.Status == store.DeliveryDone {
			res = p.applyExternally(ctx, log, d, res)
		}
	}
	status, stale, err := p.store.Finish(context.WithoutCancel(ctx), d, res.outcome)
	if err != nil {
		// Unrecorded, the delivery keeps its lease and is taken up again
		// when it expires: at-least-once, never lost.
		log.Error("recording attempt", "error", err)
		return
	}
	elapsed := time.Since(start)
	if p.obs != nil {
		p.obs.Processed(d.Kind, status, elapsed)
		if status == store.DeliveryRetrying {
			p.obs.Retried()
		}
	}
	d.Status, d.Summary, d.Error = status, res.outcome.Summary, res.outcome.Error
	if status == store.DeliveryRetrying {
		d.NextAttemptAt = res.outcome.NextAttempt.UnixMilli()
	}
	lvl := slog.LevelInfo
	if status != store.DeliveryDone {
		lvl = slog.LevelWarn
	}
	log.Log(ctx, lvl, "delivery attempt finished", "status", status, "elapsed", elapsed.Round(time.Microsecond), "error", res.outcome.Error)
	p.notify(Result{Delivery: d, Status: status, HTTPStatus: res.outcome.HTTPStatus, Summary: res.summary,
		EventSummary: res.eventSummary, StaleFields: stale, Error: res.err})
}

// settledDead reports a delivery that a claim found out of attempts and
// settled dead, and answers its waiters.
func (p *Pipeline) settledDead(d store.Delivery, err error) {
	p.log.Warn("delivery attempt finished", "delivery", d.ID, "installation", d.Installation, "issue_key", d.IssueKey,
		"attempt", d.Attempts, "status", d.Status, "error", err)
	if p.obs != nil {
		p.obs.Processed(d.Kind, d.Status, 0)
	}
	p.notify(Stored(d))
}

// notifyCurrent answers waiters of a delivery that was not claimed (someone
// else has it, or it is settled) with what is stored.
func (p *Pipeline) notifyCurrent(id int64) {
	if !p.waiting(id) {
		return
	}
	d, err := p.store.Delivery(context.Background(), id)
	if err != nil {
		return
	}
	if d.Status != store.DeliveryProcessing {
		p.notify(Stored(d))
		return
	}
	// In flight: if on this host, its worker notifies; if on another
	// host sharing the database, only the record tells when it is done.
	go p.watch(id)
}

// watch answers a delivery's waiters from the record once its attempt has
// an outcome, unless they are answered or gone first.
func (p *Pipeline) watch(id int64) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		if !p.waiting(id) {
			return
		}
		d, err := p.store.Delivery(context.Background(), id)
		if err == nil && d.Status != store.DeliveryProcessing && d.Status != store.DeliveryPending {
			p.notify(Stored(d))
			return
		}
	}
}

func (p *Pipeline) waiting(id int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.waiters[id]) > 0
}

// Stored turns a stored, settled delivery into a Result.
func Stored(d store.Delivery) Result {
	r := Result{Delivery: d, Status: d.Status, HTTPStatus: d.HTTPStatus}
	switch {
	case d.Summary == "":
	case d.Kind == store.KindEvent:
		var s abi.EventSummary
		if json.Unmarshal([]byte(d.Summary), &s) == nil {
			r.EventSummary = &s
		}
	default:
		var s struct {
			abi.Summary
			StaleFields []string `json:"stale_fields"` // store.SummaryStaleFields
		}
		if json.Unmarshal([]byte(d.Summary), &s) == nil {
			r.Summary, r.StaleFields = &s.Summary, s.StaleFields
		}
	}
	if d.Error != "" {
		// Stored as abi.Error's text, "code: message".
		code, msg, ok := strings.Cut(d.Error, ": ")
		if !ok {
			code, msg = string(abi.CodeInternal), d.Error
		}
		r.Error = &abi.Error{Code: abi.ErrorCode(code), Message: msg}
	}
	return r
}

type runResult struct {
	outcome      store.Outcome
	summary      *abi.Summary
	eventSummary *abi.EventSummary
	err          *abi.Error
}

// binding loads the delivery's installation and binds a plugin call to
// it; without one, the attempt's outcome is in *runResult.
func (p *Pipeline) binding(ctx context.Context, log *slog.Logger, d store.Delivery, o store.Outcome) (*capabilities.Binding, *runResult) {
	inst, err := p.store.Installation(ctx, d.Installation)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			// Uninstalled since: nothing will make this delivery apply.
			o.Status, o.HTTPStatus, o.Error = store.DeliveryFailed, http.StatusGone, "installation no longer exists"
			return nil, &runResult{outcome: o, err: abi.Errorf(abi.CodeNotFound, o.Error)}
		}
		res := p.retry(d, o, abi.Errorf(abi.CodeUnavailable, "loading installation: "+err.Error()))
		return nil, &res
	}
	return &capabilities.Binding{Installation: inst, Delivery: d.ID, Logger: log}, nil
}

// run calls the plugin and classifies the result.
func (p *Pipeline) run(ctx context.Context, log *slog.Logger, d store.Delivery) runResult {
	o := store.Outcome{Attempt: d.Attempts, StartedAt: time.Now(), IssueKey: d.IssueKey}
	b, failed := p.binding(ctx, log, d, o)
	if failed != nil {
		return *failed
	}
	sum, err := engine.HandleIssueUpdated(ctx, p.engine, b, d.Body)
	if err == nil {
		js, _ := json.Marshal(sum)
		o.Status, o.HTTPStatus, o.Summary = store.DeliveryDone, http.StatusOK, string(js)
		o.Ignored, o.Assignments, o.Statuses = sum.Outcome == abi.OutcomeIgnored, b.Staged, b.StagedStatuses
		// Each field of the issue is ordered on its own watermark
		// (store.Finish): the status by the statuses staged, the
		// assignee (Synced) by the assignments staged, or, with none, by
		// a synced outcome of a changelog that changes the assignee (its
		// groups were skipped, or none is linked). A status-only delivery
		// leaves the assignee's order alone: were it ordered there, an
		// older assignee change finishing after it would be stale, and
		// its assignment lost.
		o.Synced = len(b.Staged) > 0 || sum.Outcome == abi.OutcomeSynced && changesAssignee(d.Body)
		if sum.IssueKey != "" {
			o.IssueKey = sum.IssueKey
		}
		return runResult{outcome: o, summary: sum}
	}
	return p.failed(d, o, err)
}

// changesAssignee reports whether a webhook body's changelog changes the
// issue's assignee, read by the plugin's own parser as the accept path
// reads the body (webhook.Inspect).
func changesAssignee(body []byte) bool {
	p, err := webhook.Parse(body)
	return err == nil && p.ChangesField("assignee")
}

// failed classifies a failed plugin call: a failure the plugin reports as
// retryable, a fault of the sandbox and anything unknown are retried; any
// other reported failure fails the delivery.
func (p *Pipeline) failed(d store.Delivery, o store.Outcome, err error) runResult {
	var ae *abi.Error
	var fault *engine.Fault
	switch {
	case errors.As(err, &ae) && ae.Code.Retryable():
		return p.retry(d, o, ae)
	case errors.As(err, &ae):
		o.Status, o.HTTPStatus, o.Error = store.DeliveryFailed, StatusFor(ae.Code), ae.Error()
		return runResult{outcome: o, err: ae}
	case errors.As(err, &fault):
		// A trap or a time-out may be the instance's, not the delivery's:
		// a fresh instance gets another try.
		return p.retry(d, o, abi.Errorf(abi.CodeUnavailable, fault.Error()))
	default:
		return p.retry(d, o, abi.Errorf(abi.CodeUnavailable, err.Error()))
	}
}

// applyExternally applies a done delivery's assignments on a platform
// outside the store's database, between two transactions of the store:
// Reserve decides under the issue's watermark lock that the delivery is
// not stale and holds the issue; Apply, keyed by the delivery, changes
// nothing the second time (a host that died after it); Finish then
// records the outcome, moves the mark and releases the hold
// (host/RATIONALE.md, "Applying on an external platform").
func (p *Pipeline) applyExternally(ctx context.Context, log *slog.Logger, d store.Delivery, res runResult) runResult {
	res.outcome.External = true
	decision, stale, failed := p.reserve(ctx, d, res.outcome)
	switch {
	case failed != nil:
		return *failed
	case decision == store.ReserveStale:
		return res // Finish records it stale
	case len(stale) > 0:
		// A newer delivery applied these fields: the others apply.
		log.Info("fields of the issue already applied by a newer delivery; their changes are not applied", "stale_fields", stale)
		res.outcome = res.outcome.Without(stale)
	}
	if res.outcome.Changes().Len() > 0 {
		key := platform.ApplyKey{Installation: d.Installation, Delivery: d.ID, Round: d.AttemptBase, IssueKey: res.outcome.IssueKey}
		start := time.Now()
		changed, err := p.platform.Apply(ctx, key, res.outcome.Changes())
		// As the host functions map the platform's failures: a
		// refusal fails the delivery, a broken answer is internal.
		if code, known := capabilities.PlatformCode(err); known {
			ae := abi.Errorf(code, "applying on the platform: "+err.Error())
			if code.Retryable() {
				return p.retry(d, res.outcome, ae)
			}
			res.outcome.Status, res.outcome.HTTPStatus, res.outcome.Error = store.DeliveryFailed, StatusFor(ae.Code), ae.Error()
			return runResult{outcome: res.outcome, err: ae}
		}
		if err != nil {
			return p.retry(d, res.outcome, abi.Errorf(abi.CodeUnavailable, "applying on the platform: "+err.Error()))
		}
		log.Debug("applied on the platform", "key", key.String(), "changed", changed, "elapsed", time.Since(start))
	}
	res.outcome.AppliedAhead = true
	return res
}

// reserve takes the hold on the delivery's issue (store.Reserve), waiting
// while another delivery of the issue holds it: that one finishes, or its
// hold expires, within its lease. It returns ReserveApply (with the fields
// found stale, whose changes are not to be applied) or ReserveStale, or
// the outcome of a retry when the store fails or the attempt runs out of
// time first.
func (p *Pipeline) reserve(ctx context.Context, d store.Delivery, o store.Outcome) (store.Reservation, []string, *runResult) {
	for {
		decision, stale, err := p.store.Reserve(ctx, d, o, p.lease())
		if err != nil {
			res := p.retry(d, o, abi.Errorf(abi.CodeUnavailable, "deciding order: "+err.Error()))
			return decision, nil, &res
		}
		if decision != store.ReserveWait {
			return decision, stale, nil
		}
		select {
		case <-ctx.Done():
			res := p.retry(d, o, abi.Errorf(abi.CodeUnavailable, "another delivery of the issue was still applying"))
			return decision, nil, &res
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runEvent carries a platform event to the installation's Jira: the
// plugin's handle_platform_event makes Jira writes while it runs, so
// unlike a webhook's staged changes its effect cannot wait for the
// order check. The hold of the group's field (keyed installation +
// "group:<id>:assignee" or "group:<id>:status", store.EventIssueID) is
// therefore taken before the plugin runs: an event older than one already
// carried for that field is stale and the plugin is not run; a newer one
// waits while another event of the field runs. Finish records the outcome,
// moves the field's mark (when done) and releases the hold
// (host/RATIONALE.md, "Platform events").
func (p *Pipeline) runEvent(ctx context.Context, log *slog.Logger, d store.Delivery) runResult {
	// Done, Synced and External are what Reserve orders by, and what
	// Finish needs to move the mark and release the hold; a failure
	// below replaces the status.
	o := store.Outcome{Attempt: d.Attempts, StartedAt: time.Now(), IssueKey: d.IssueKey,
		Status: store.DeliveryDone, Synced: true, External: true}
	b, failed := p.binding(ctx, log, d, o)
	if failed != nil {
		return *failed
	}
	// One field per event (its issue id names it): never partly stale.
	decision, _, failed := p.reserve(ctx, d, o)
	switch {
	case failed != nil:
		return *failed
	case decision == store.ReserveStale:
		log.Info("platform event is older than one already carried for its group; not run", "group", d.IssueID)
		return runResult{outcome: o} // Finish records it stale
	}
	sum, err := engine.HandlePlatformEvent(ctx, p.engine, b, d.Body)
	if err != nil {
		return p.failed(d, o, err)
	}
	if n := len(b.Staged) + len(b.StagedStatuses); n > 0 {
		// An event's effect is in Jira; changes of groups it staged
		// would echo the platform's own change back to it.
		log.Warn("platform event staged changes of groups; they are not applied", "changes", n)
	}
	js, _ := json.Marshal(sum)
	o.HTTPStatus, o.Summary = http.StatusOK, string(js)
	o.Ignored = sum.Outcome == abi.OutcomeIgnored
	o.AppliedAhead = true
	return runResult{outcome: o, eventSummary: sum}
}

// retry schedules the next attempt, or gives up after the last.
func (p *Pipeline) retry(d store.Delivery, o store.Outcome, ae *abi.Error) runResult {
	o.Error = ae.Error()
	o.HTTPStatus = http.StatusServiceUnavailable
	if o.Attempt-d.AttemptBase >= p.cfg.MaxAttempts {
		o.Status = store.DeliveryDead
		return runResult{outcome: o, err: ae}
	}
	o.Status, o.NextAttempt = store.DeliveryRetrying, time.Now().Add(p.Backoff(o.Attempt-d.AttemptBase))
	return runResult{outcome: o, err: ae}
}

// Backoff is the wait after the given failed attempt: BaseBackoff doubled
// per earlier failure, capped, with ±25% jitter so that deliveries failed
// together (Jira down) do not all come back at once.
func (p *Pipeline) Backoff(attempt int) time.Duration {
	d := p.cfg.BaseBackoff
	for i := 1; i < attempt && d < p.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.cfg.MaxBackoff)
	jitter := time.Duration(rand.Int64N(int64(d)/2+1)) - d/4
	return d + jitter
}

// StatusFor maps a plugin-reported error onto the webhook's HTTP answer.
func StatusFor(code abi.ErrorCode) int {
	switch code {
	case abi.CodeInvalidPayload, abi.CodeInvalidRequest:
		return http.StatusBadRequest
	case abi.CodeUnavailable:
		return http.StatusServiceUnavailable
	case abi.CodeJiraRejected:
		return http.StatusBadGateway
	default:
		return http.StatusInternalServerError
	}
}
