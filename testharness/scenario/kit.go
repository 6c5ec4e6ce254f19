package scenario

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/jirasync/jirasync/host/app"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/testharness/abischema"
	"github.com/jirasync/jirasync/testharness/fakejira"
)

// ProtocolVersion is the adapter protocol's version (docs/CONFORMANCE.md).
// Version 2 carries the outbound settings in load and runs a scenario's
// platform events through handle_platform_event.
const ProtocolVersion = 2

// Kit runs plugin-level scenarios through a host's adapter: a child
// process speaking the protocol of docs/CONFORMANCE.md on its stdin and
// stdout. The kit runs the simulated Jira, drives the adapter and checks
// every expectation itself; the adapter only hosts the plugin.
type Kit struct {
	// Adapter is the command line that starts an adapter (argv).
	Adapter    []string
	PluginPath string
	// Log receives the simulated Jira's log and the adapter's stderr; nil
	// drops them. Trace, when set, gets one line per delivery.
	Log   io.Writer
	Trace io.Writer

	runner Runner // for its OAuth key
}

// AdapterLoad is the protocol's "load" request.
type AdapterLoad struct {
	Op            string                `json:"op"`
	Protocol      int                   `json:"protocol"`
	Plugin        string                `json:"plugin"`
	Platform      platform.Data         `json:"platform"`
	Installations []AdapterInstallation `json:"installations"`
}

// AdapterInstallation is an installation as the adapter gets it: with the
// credentials its jirasync_jira_request signs with. They are the host's,
// never the plugin's.
type AdapterInstallation struct {
	ID                string                        `json:"id"`
	ExternalID        string                        `json:"external_id"`
	BaseURL           string                        `json:"base_url"`
	ConsumerKey       string                        `json:"consumer_key"`
	PrivateKeyPEM     string                        `json:"private_key_pem"`
	AccessToken       string                        `json:"access_token"`
	AccessTokenSecret string                        `json:"access_token_secret"`
	WebhookSecret     string                        `json:"webhook_secret"`
	Organizations     []abi.InstallationOrgSettings `json:"organizations"`
}

// AdapterCall is the protocol's "call" request.
type AdapterCall struct {
	Op           string `json:"op"`
	Installation string `json:"installation,omitempty"`
	Export       string `json:"export"`
	Input        []byte `json:"input"` // base64 in JSON
}

// AdapterReply is any answer of an adapter; each op fills its members.
type AdapterReply struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"` // the op failed (not the export)
	// call: the export's output, the error it reported (the Extism error
	// text), or a fault of the sandbox (trap, time-out); and its time.
	Output      []byte `json:"output,omitempty"`
	ExportError string `json:"export_error,omitempty"`
	Fault       string `json:"fault,omitempty"`
	ElapsedNS   int64  `json:"elapsed_ns,omitempty"`
	// HostNS and HostCalls, optional: the time spent inside the host
	// functions during the call, and how many were called.
	HostNS    int64 `json:"host_ns,omitempty"`
	HostCalls int   `json:"host_calls,omitempty"`
	// groups and state.
	Groups []AdapterGroup               `json:"groups,omitempty"`
	State  map[string]map[string]string `json:"state,omitempty"`
}

// AdapterGroup is a group's assignee as the adapter's platform holds it.
type AdapterGroup struct {
	ID       string  `json:"id"`
	Assignee *string `json:"assignee"`
	// Status is "unresolved" or "resolved" (since ABI 1.3); "" reads as
	// unresolved.
	Status string `json:"status,omitempty"`
}

// Adapter is a running adapter process.
type Adapter struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

// StartAdapter starts argv and returns once it runs; stderr goes to log.
func StartAdapter(ctx context.Context, argv []string, log io.Writer) (*Adapter, error) {
	if len(argv) == 0 {
		return nil, errors.New("no adapter command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if log == nil {
		log = io.Discard
	}
	cmd.Stderr = log
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting adapter %s: %w", argv[0], err)
	}
	return &Adapter{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}, nil
}

// Do sends one request and reads its answer. An answer with ok false is
// an error.
func (a *Adapter) Do(req any) (*AdapterReply, error) {
	line, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if _, err := a.in.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("adapter: writing request: %w", err)
	}
	answer, err := a.out.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("adapter: no answer to %.80s: %w", line, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(answer)))
	dec.DisallowUnknownFields()
	var r AdapterReply
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("adapter: answer %.200q: %w", answer, err)
	}
	if !r.OK {
		return nil, fmt.Errorf("adapter: %.80s: %s", line, r.Error)
	}
	return &r, nil
}

// Close asks the adapter to close and waits for it to exit.
func (a *Adapter) Close() error {
	_, err := a.Do(map[string]string{"op": "close"})
	a.in.Close()
	done := make(chan error, 1)
	go func() { done <- a.cmd.Wait() }()
	select {
	case werr := <-done:
		return errors.Join(err, werr)
	case <-time.After(10 * time.Second):
		a.cmd.Process.Kill()
		return errors.Join(err, errors.New("adapter did not exit after close"), <-done)
	}
}

// Load starts the simulated Jira for sc and an adapter loaded with the
// plugin, sc's platform and its installations (credentials registered on
// the simulated Jira). The caller closes both.
func (k *Kit) Load(ctx context.Context, sc *Scenario, logger *slog.Logger) (*fakejira.Server, *Adapter, error) {
	if err := k.runner.ensureKey(); err != nil {
		return nil, nil, err
	}
	jira, err := fakejira.Start(fakejira.Config{Version: sc.Jira.Version, Logger: logger.With("component", "fakejira")})
	if err != nil {
		return nil, nil, fmt.Errorf("starting simulated Jira: %w", err)
	}
	for _, u := range sc.Jira.Users {
		jira.AddUser(fakejira.User{Name: u.Name, Key: u.Key, EmailAddress: u.EmailAddress, DisplayName: u.DisplayName, Active: u.Active == nil || *u.Active})
	}
	load := AdapterLoad{Op: "load", Protocol: ProtocolVersion, Plugin: k.PluginPath, Platform: sc.Platform.Data}
	keyPEM := k.runner.keyPEM()
	for _, in := range sc.Platform.Installations {
		c := k.runner.credentials(jira, in)
		ai := AdapterInstallation{ID: in.ID, ExternalID: in.ExternalID, BaseURL: jira.URL(), ConsumerKey: c.consumer,
			PrivateKeyPEM: keyPEM, AccessToken: c.token, AccessTokenSecret: c.secret, WebhookSecret: in.WebhookSecret,
			Organizations: []abi.InstallationOrgSettings{}}
		for _, o := range in.Organizations {
			org := abi.InstallationOrgSettings{ID: o.ID, InboundAssignee: o.InboundAssignee == nil || *o.InboundAssignee,
				InboundStatus: o.InboundStatus, OutboundAssignee: o.OutboundAssignee, OutboundStatus: o.OutboundStatus}
			for _, m := range o.StatusMappings {
				org.StatusMappings = append(org.StatusMappings, abi.StatusMapping(m))
			}
			ai.Organizations = append(ai.Organizations, org)
		}
		load.Installations = append(load.Installations, ai)
	}
	if err := setStatuses(jira, sc.Jira.Statuses); err != nil {
		jira.Close()
		return nil, nil, err
	}
	if err := setIssues(jira, sc.Jira); err != nil {
		jira.Close()
		return nil, nil, err
	}
	if err := jira.SetDown(sc.Jira.Down); err != nil {
		jira.Close()
		return nil, nil, err
	}
	ad, err := StartAdapter(ctx, k.Adapter, k.Log)
	if err != nil {
		jira.Close()
		return nil, nil, err
	}
	if _, err := ad.Do(load); err != nil {
		ad.Close()
		jira.Close()
		return nil, nil, err
	}
	return jira, ad, nil
}

// retryable and statusOf are the ABI's error table (docs/ABI.md,
// "Errors"): what the Go host's pipeline makes of each code.
var (
	retryable = map[abi.ErrorCode]bool{abi.CodeUnavailable: true, abi.CodeInternal: true}
	statusOf  = map[abi.ErrorCode]int{abi.CodeInvalidRequest: 400, abi.CodeInvalidPayload: 400, abi.CodeNotFound: 500,
		abi.CodeDenied: 500, abi.CodeUnavailable: 503, abi.CodeJiraRejected: 502, abi.CodeInternal: 503}
)

// Run runs one plugin-level scenario through a fresh adapter.
func (k *Kit) Run(ctx context.Context, sc *Scenario) (res Result, err error) {
	start := time.Now()
	res.Name = sc.Name
	defer func() { res.Elapsed = time.Since(start) }()
	if sc.Level != LevelPlugin {
		return res, fmt.Errorf("scenario is %s-level: the kit runs plugin-level scenarios only", sc.Level)
	}
	schema, err := abischema.Load()
	if err != nil {
		return res, err
	}
	logger := slog.New(slog.DiscardHandler)
	if k.Log != nil {
		logger = slog.New(slog.NewTextHandler(k.Log, &slog.HandlerOptions{Level: slog.LevelDebug})).With("scenario", sc.Name)
	}
	jira, ad, err := k.Load(ctx, sc, logger)
	if err != nil {
		return res, err
	}
	defer jira.Close()
	closed := false
	defer func() {
		if !closed {
			ad.Close()
		}
	}()

	run := &kitRun{k: k, sc: sc, schema: schema, jira: jira, ad: ad, res: &res,
		newest: map[string]int64{}, seen: map[string]int{}, eventIDs: map[string]int{}}
	for i := range sc.Deliveries {
		if err := run.events(i); err != nil {
			return res, err
		}
		if err := run.delivery(i, sc.Deliveries[i]); err != nil {
			return res, err
		}
	}
	if err := run.events(len(sc.Deliveries)); err != nil {
		return res, err
	}

	if sc.Expect.Deliveries != nil {
		res.Failures = append(res.Failures, compareStored(run.stored, sc.Expect.Deliveries)...)
	}
	g, err := ad.Do(map[string]string{"op": "groups"})
	if err != nil {
		return res, err
	}
	groups := map[string]AdapterGroup{}
	for _, x := range g.Groups {
		groups[x.ID] = x
	}
	for _, w := range sc.Expect.Groups {
		got, ok := groups[w.ID]
		if !ok {
			res.Failures = append(res.Failures, fmt.Sprintf("group %s: the adapter does not list it", w.ID))
			continue
		}
		if !sameAssignee(got.Assignee, w.Assignee) {
			res.Failures = append(res.Failures, fmt.Sprintf("group %s: assignee %s, want %s", w.ID, show(got.Assignee), show(w.Assignee)))
		}
		if status := cmp.Or(got.Status, platform.StatusUnresolved); w.Status != "" && status != w.Status {
			res.Failures = append(res.Failures, fmt.Sprintf("group %s: status %s, want %s", w.ID, status, w.Status))
		}
	}
	st, err := ad.Do(map[string]string{"op": "state"})
	if err != nil {
		return res, err
	}
	res.Failures = append(res.Failures, checkState(st.State, sc, k.runner.keyPEM())...)
	closed = true
	if err := ad.Close(); err != nil {
		res.Failures = append(res.Failures, "closing the adapter: "+err.Error())
	}
	res.Failures = append(res.Failures, checkJira(jira.Requests(), sc.Expect.JiraLookups, sc.Expect.JiraStatusLookups)...)
	if sc.Expect.Jira != nil {
		res.Failures = append(res.Failures, checkJiraSide(jira, *sc.Expect.Jira)...)
	}
	return res, nil
}

// kitRun is one scenario's run through an adapter: the steps so far and
// the records the Go host's pipeline would have stored for them.
type kitRun struct {
	k      *Kit
	sc     *Scenario
	schema *abischema.Schema
	jira   *fakejira.Server
	ad     *Adapter
	res    *Result

	stored   []store.Delivery
	newest   map[string]int64 // issue id (installation and group for events) -> newest timestamp carried
	seen     map[string]int   // webhook dedupe key -> delivery
	eventIDs map[string]int   // platform event id -> step
}

// setJira applies a step's jira_down and jira_status.
func (r *kitRun) setJira(down *bool, status *int) error {
	if down != nil {
		if err := r.jira.SetDown(*down); err != nil {
			return err
		}
	}
	if status != nil {
		r.jira.SetFailure(*status)
	}
	return nil
}

// delivery runs webhook delivery i: inspect_delivery, then
// handle_issue_updated, judged as the Go host's pipeline would.
func (r *kitRun) delivery(i int, d Delivery) error {
	fail := func(format string, args ...any) {
		r.res.Failures = append(r.res.Failures, fmt.Sprintf("delivery %d: ", i+1)+fmt.Sprintf(format, args...))
	}
	if err := r.setJira(d.JiraDown, d.JiraStatus); err != nil {
		return err
	}
	body, err := r.sc.Body(d)
	if err != nil {
		return fmt.Errorf("delivery %d: %w", i+1, err)
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil || obj == nil {
		return fmt.Errorf("delivery %d: the body is not a JSON object, which the endpoint refuses: mark the scenario %q", i+1, LevelHTTP)
	}

	// inspect_delivery: what the host stores the delivery under. A
	// scenario that needs the pipeline's deduplication or ordering is
	// HTTP-level; the kit refuses to guess.
	ins, err := r.ad.Do(AdapterCall{Op: "call", Installation: d.Installation, Export: abi.ExportInspectDelivery, Input: body})
	if err != nil {
		return fmt.Errorf("delivery %d: %w", i+1, err)
	}
	var insp abi.InspectResponse
	if ins.ExportError != "" || ins.Fault != "" {
		fail("inspect_delivery failed (it never fails): %s%s", ins.ExportError, ins.Fault)
	} else if err := r.schema.Validate(abischema.Output(abi.ExportInspectDelivery), ins.Output); err != nil {
		fail("inspect_delivery output: %v", err)
	} else if err := json.Unmarshal(ins.Output, &insp); err != nil || insp.Inspection == nil {
		fail("inspect_delivery output %s", truncate(ins.Output))
	} else {
		in := insp.Inspection
		if j, dup := r.seen[in.DedupeKey]; dup {
			return fmt.Errorf("delivery %d repeats delivery %d (dedupe key %s): mark the scenario %q", i+1, j, in.DedupeKey, LevelHTTP)
		}
		r.seen[in.DedupeKey] = i + 1
		if in.IssueID != "" {
			if err := r.order(d.Installation+" "+in.IssueID, in.Timestamp); err != nil {
				return fmt.Errorf("delivery %d is older than one already applied to issue %s: %w", i+1, in.IssueID, err)
			}
		}
	}

	c, err := r.ad.Do(AdapterCall{Op: "call", Installation: d.Installation, Export: abi.ExportHandleIssueUpdated, Input: body})
	if err != nil {
		return fmt.Errorf("delivery %d: %w", i+1, err)
	}
	status, rec, answer, diffs := judge(r.schema, abi.ExportHandleIssueUpdated, c)
	r.res.Failures = append(r.res.Failures, prefix(fmt.Sprintf("delivery %d: ", i+1), diffs)...)
	rec.Installation = d.Installation
	if in := insp.Inspection; in != nil {
		rec.Event, rec.IssueID = in.Event, in.IssueID
		if rec.IssueKey == "" {
			rec.IssueKey = in.IssueKey
		}
	}
	r.stored = append(r.stored, rec)
	if r.k.Trace != nil {
		fmt.Fprintf(r.k.Trace, "    delivery %d: %d %s (%s)\n", i+1, status, answer, time.Duration(c.ElapsedNS))
	}
	want, _ := parseStatus(d.ExpectStatus)
	if !want.match(status) {
		fail("status %d, want %s (answer %s)", status, want, truncate(answer))
	}
	if len(d.ExpectSummary) > 0 {
		for _, diff := range matchSummary(answer, d.ExpectSummary) {
			fail("%s", diff)
		}
	}
	return nil
}

// order refuses a timestamp older than the newest one carried for key:
// the host would record it stale, which is its pipeline's to decide.
func (r *kitRun) order(key string, ts int64) error {
	if t, ok := r.newest[key]; ok && ts < t {
		return fmt.Errorf("mark the scenario %q", LevelHTTP)
	}
	r.newest[key] = ts
	return nil
}

// events runs the scenario's platform events placed after the first
// after deliveries, in the order listed. Each is the event as the host
// stores it (app.EventBody), carried by handle_platform_event to every
// installation, by installation id, as the host fans it out; a
// done one moves the installation's mark of the group, as Finish does.
func (r *kitRun) events(after int) error {
	insts := make([]string, 0, len(r.sc.Platform.Installations))
	for _, in := range r.sc.Platform.Installations {
		insts = append(insts, in.ID)
	}
	slices.Sort(insts)
	for i, e := range r.sc.Events {
		if e.After != after {
			continue
		}
		if e.Event == nil {
			return fmt.Errorf("event %d: jira_edit and replay are HTTP-level: mark the scenario %q", i+1, LevelHTTP)
		}
		fail := func(format string, args ...any) {
			r.res.Failures = append(r.res.Failures, fmt.Sprintf("event %d: ", i+1)+fmt.Sprintf(format, args...))
		}
		if err := r.setJira(e.JiraDown, e.JiraStatus); err != nil {
			return err
		}
		pe, err := platform.DecodeEvent(e.Event)
		if err != nil {
			return fmt.Errorf("event %d: the endpoint refuses it (%v): mark the scenario %q", i+1, err, LevelHTTP)
		}
		if j, dup := r.eventIDs[pe.ID]; dup {
			return fmt.Errorf("event %d repeats event %d (id %s): mark the scenario %q", i+1, j, pe.ID, LevelHTTP)
		}
		r.eventIDs[pe.ID] = i + 1
		// The endpoint's answer once stored; its members (id,
		// deliveries, duplicate) are the endpoint's, refused by Load.
		if want, _ := parseStatus(e.ExpectStatus); !want.match(http.StatusAccepted) {
			fail("status %d, want %s", http.StatusAccepted, want)
		}
		body := app.EventBody(pe)
		for _, inst := range insts {
			if err := r.order(inst+" "+store.EventIssueID(pe.Group, pe.Type), pe.OccurredAt.UnixMilli()); err != nil {
				return fmt.Errorf("event %d is older than one already carried for that field of group %s: %w", i+1, pe.Group, err)
			}
			c, err := r.ad.Do(AdapterCall{Op: "call", Installation: inst, Export: abi.ExportHandlePlatformEvent, Input: body})
			if err != nil {
				return fmt.Errorf("event %d: %w", i+1, err)
			}
			status, rec, answer, diffs := judge(r.schema, abi.ExportHandlePlatformEvent, c)
			r.res.Failures = append(r.res.Failures, prefix(fmt.Sprintf("event %d, %s: ", i+1, inst), diffs)...)
			rec.Installation, rec.Event, rec.IssueID = inst, pe.Type, store.EventIssueID(pe.Group, pe.Type)
			rec.IssueKey = store.EventIssueKey(pe.Group)
			r.stored = append(r.stored, rec)
			if r.k.Trace != nil {
				fmt.Fprintf(r.k.Trace, "    event %d, %s: %d %s (%s)\n", i+1, inst, status, answer, time.Duration(c.ElapsedNS))
			}
		}
	}
	return nil
}

// judge reads one call of a delivery's export (handle_issue_updated or
// handle_platform_event) as the Go host's pipeline would: the HTTP status
// a webhook would be answered, the record stored, and the answer's
// members.
func judge(schema *abischema.Schema, export string, r *AdapterReply) (status int, rec store.Delivery, answer []byte, diffs []string) {
	rec.Attempts = 1
	var e *abi.Error
	switch {
	case r.Fault != "":
		// A trap or time-out: retried with a fresh instance.
		e = abi.Errorf(abi.CodeInternal, "plugin fault: "+r.Fault)
	case r.ExportError != "":
		e = &abi.Error{}
		if err := json.Unmarshal([]byte(r.ExportError), e); err != nil || e.Code == "" {
			diffs = append(diffs, fmt.Sprintf("the export's error is not an ABI error: %.200q", r.ExportError))
			e = abi.Errorf(abi.CodeInternal, "bad error")
		} else if err := schema.Validate(abischema.ErrorDef, []byte(r.ExportError)); err != nil {
			diffs = append(diffs, fmt.Sprintf("the export's error: %v", err))
		}
	default:
		if err := schema.Validate(abischema.Output(export), r.Output); err != nil {
			diffs = append(diffs, fmt.Sprintf("%s output: %v", export, err))
		}
		// The envelope both exports share (abi.HandleResponse,
		// abi.EventResponse): a summary, or an error.
		var out struct {
			Summary json.RawMessage `json:"summary"`
			abi.Fault
		}
		switch {
		case json.Unmarshal(r.Output, &out) != nil || (out.Summary == nil && out.Error == nil):
			diffs = append(diffs, fmt.Sprintf("%s output %s", export, truncate(r.Output)))
			e = abi.Errorf(abi.CodeInternal, "bad output")
		case out.Error != nil:
			// A host whose SDK drops the return code sees the envelope here.
			e = out.Error
		default:
			rec.Status, rec.Summary = "done", string(out.Summary)
			m := map[string]any{}
			json.Unmarshal(out.Summary, &m)
			if key, ok := m["issue_key"].(string); ok {
				rec.IssueKey = key // the pipeline stores the summary's issue key
			}
			m["status"] = rec.Status
			answer, _ = json.Marshal(m)
			return 200, rec, answer, diffs
		}
	}
	rec.Status, rec.Error = "failed", e.Error()
	if retryable[e.Code] {
		rec.Status = "retrying"
	}
	status, ok := statusOf[e.Code]
	if !ok {
		diffs = append(diffs, fmt.Sprintf("error code %q is not in the ABI", e.Code))
		status = 500
	}
	answer, _ = json.Marshal(map[string]any{"status": rec.Status, "error": e})
	return status, rec, answer, diffs
}

// checkState holds the plugin's state, as the adapter reports it, to the
// ABI's rules: per installation of the scenario, keys of 1-512 bytes,
// values of at most 64 KiB, and no secret of the host's in it (the plugin
// must never have seen one).
func checkState(state map[string]map[string]string, sc *Scenario, keyPEM string) []string {
	known := map[string]Installation{}
	for _, in := range sc.Platform.Installations {
		known[in.ID] = in
	}
	var fails []string
	for inst, kv := range state {
		in, ok := known[inst]
		if !ok {
			fails = append(fails, fmt.Sprintf("state: installation %q is not the scenario's", inst))
			continue
		}
		secrets := []string{keyPEM, "access-secret-" + in.ID}
		if in.WebhookSecret != "" {
			secrets = append(secrets, in.WebhookSecret)
		}
		for key, v := range kv {
			if key == "" || len(key) > 512 || len(v) > 64<<10 {
				fails = append(fails, fmt.Sprintf("state %s: key %.40q: outside the ABI's bounds", inst, key))
			}
			for _, s := range secrets {
				if strings.Contains(key, s) || strings.Contains(v, s) {
					fails = append(fails, fmt.Sprintf("state %s: key %.40q holds a secret of the host", inst, key))
				}
			}
		}
	}
	return fails
}

func prefix(p string, s []string) []string {
	for i := range s {
		s[i] = p + s[i]
	}
	return s
}

// AdapterCommand splits a command line on spaces (no quoting: paths with
// spaces go through a wrapper script).
func AdapterCommand(line string) []string { return strings.Fields(os.ExpandEnv(line)) }
