package scenario

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/jirasync/jirasync/host/app"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/host/webhooktoken"
	"github.com/jirasync/jirasync/testharness/fakejira"
)

// This file runs the two-way sync parts of a scenario (issue 12): the
// simulated Jira's issues, workflow and echo, the steps of `events`, and
// the expectations on Jira's side.

// EventsPath is where platform events are POSTed (docs/API.md).
const EventsPath = "/api/v1/events"

// settleLimit bounds each wait for the pipeline and the echo to go quiet.
const settleLimit = 30 * time.Second

// setIssues gives the simulated Jira the scenario's workflow and issues.
func setIssues(jira *fakejira.Server, j Jira) error {
	if j.Transitions != nil {
		if err := jira.SetTransitions(j.Transitions); err != nil {
			return err
		}
	}
	for _, is := range j.Issues {
		fi := fakejira.Issue{Key: is.Key, ID: is.ID, Status: is.Status, RefuseAssign: is.RefuseAssign}
		if is.Assignee != nil {
			fi.Assignee = *is.Assignee
		}
		if err := jira.AddIssue(fi); err != nil {
			return err
		}
	}
	return nil
}

// registerEcho registers every installation's webhook URL on the simulated
// Jira, as the install flow would, and turns its echo on.
func registerEcho(jira *fakejira.Server, sc *Scenario, base string) error {
	for _, in := range sc.Platform.Installations {
		tok, err := webhooktoken.Mint(in.ExternalID, []byte(in.WebhookSecret))
		if err != nil {
			return err
		}
		jira.AddWebhook(fakejira.Webhook{Name: "jirasync " + in.ID, URL: base + app.WebhookPath + tok,
			Events: []string{"jira:issue_updated"}, Active: true})
	}
	jira.SetEcho(true)
	return nil
}

// stepper runs the steps of a scenario's events.
type stepper struct {
	r      *Runner
	sc     *Scenario
	jira   *fakejira.Server
	store  *store.Store
	base   string
	admin  string
	client *http.Client
}

// event runs step i and waits for everything it set off to settle. The
// error is for a step that could not be run at all.
func (s *stepper) event(ctx context.Context, i int, e Event) ([]string, error) {
	if e.JiraDown != nil {
		if err := s.jira.SetDown(*e.JiraDown); err != nil {
			return nil, err
		}
	}
	if e.JiraStatus != nil {
		s.jira.SetFailure(*e.JiraStatus)
	}
	var fails []string
	fail := func(format string, args ...any) {
		fails = append(fails, fmt.Sprintf("event %d: ", i+1)+fmt.Sprintf(format, args...))
	}
	var req *http.Request
	var err error
	switch {
	case e.JiraEdit != nil:
		a, _ := e.JiraEdit.assignee() // checked by Load
		if err := s.jira.Edit(e.JiraEdit.Issue, a, e.JiraEdit.Status); err != nil {
			return nil, err
		}
	case e.Replay != 0:
		stored, err := s.store.Deliveries(ctx, store.DeliveryFilter{Limit: 500})
		if err != nil {
			return nil, err
		}
		if e.Replay > len(stored) {
			return nil, fmt.Errorf("replay %d: only %d deliveries are stored", e.Replay, len(stored))
		}
		id := stored[len(stored)-e.Replay].ID // the list is newest first
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, s.base+app.DeliveriesPath+"/"+strconv.FormatInt(id, 10)+"/replay", nil)
		if err != nil {
			return nil, err
		}
	default:
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, s.base+EventsPath, bytes.NewReader(e.Event))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
	}
	if req != nil {
		req.Header.Set("Authorization", "Bearer "+s.admin)
		s.r.send(s.client, req, fmt.Sprintf("event %d: %s %s", i+1, req.Method, req.URL.Path), e.ExpectStatus, e.ExpectSummary, fail)
	}
	return fails, settle(ctx, s.store, s.jira)
}

// settle waits until no stored delivery is pending or being processed and
// the simulated Jira has sent every echo, again until neither moves: an
// echo is a delivery, and a delivery may be a write that echoes.
func settle(ctx context.Context, st *store.Store, jira *fakejira.Server) error {
	for {
		before := len(jira.Echoes())
		wctx, cancel := context.WithTimeout(ctx, settleLimit)
		err := jira.WaitEchoes(wctx)
		cancel()
		if err != nil {
			return fmt.Errorf("simulated Jira's echoes not sent after %s: %w", settleLimit, err)
		}
		if err := waitSettled(ctx, st, settleLimit); err != nil {
			return err
		}
		if err := jira.WaitEchoes(ctx); err != nil {
			return err
		}
		if len(jira.Echoes()) == before {
			return nil
		}
	}
}

// checkJiraSide checks the simulated Jira's issues and the writes it
// received against want.
func checkJiraSide(jira *fakejira.Server, want ExpectJira) []string {
	var fails []string
	for _, w := range want.Issues {
		is, ok := jira.Issue(w.Key)
		if !ok {
			fails = append(fails, fmt.Sprintf("Jira issue %s: no such issue", w.Key))
			continue
		}
		got := &is.Assignee
		if is.Assignee == "" {
			got = nil
		}
		if !sameAssignee(got, w.Assignee) {
			fails = append(fails, fmt.Sprintf("Jira issue %s: assignee %s, want %s", w.Key, show(got), show(w.Assignee)))
		}
		if w.Status != "" && is.Status != w.Status {
			fails = append(fails, fmt.Sprintf("Jira issue %s: status %s, want %s", w.Key, is.Status, w.Status))
		}
	}
	if want.Writes != nil {
		fails = append(fails, compareWrites(jira.Writes(), want.Writes)...)
	}
	if want.UserSearches != nil {
		n := 0
		for _, rq := range jira.Requests() {
			if rq.Path == "/rest/api/2/user/search" {
				n++
			}
		}
		if n != *want.UserSearches {
			fails = append(fails, fmt.Sprintf("Jira user searches: %d, want %d", n, *want.UserSearches))
		}
	}
	return fails
}

func compareWrites(got []fakejira.Write, want []ExpectWrite) []string {
	show := func(ws []fakejira.Write) string {
		var b bytes.Buffer
		for i, w := range ws {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %s=%q", w.Issue, w.Field, w.Value)
			if w.Transition != "" {
				fmt.Fprintf(&b, " (transition %s)", w.Transition)
			}
			fmt.Fprintf(&b, " %d", w.Status)
		}
		return "[" + b.String() + "]"
	}
	if len(got) != len(want) {
		return []string{fmt.Sprintf("Jira received %d writes %s, want %d", len(got), show(got), len(want))}
	}
	var fails []string
	for i, w := range want {
		g := got[i]
		if g.Issue != w.Issue || g.Field != w.Field || g.Value != w.Value ||
			(w.Transition != "" && g.Transition != w.Transition) || (w.Status != 0 && g.Status != w.Status) {
			fails = append(fails, fmt.Sprintf("Jira write %d: %s, want %s %s=%q (transition %q, status %d)",
				i+1, show(got[i:i+1]), w.Issue, w.Field, w.Value, w.Transition, w.Status))
		}
	}
	return fails
}

// matchStored matches a stored summary (JSON text) against want: objects
// on the keys want gives, arrays element by element and of the same
// length, other values by JSON equality.
func matchStored(summary string, want map[string]any) []string {
	if summary == "" {
		return []string{"no summary stored"}
	}
	var got any
	if err := json.Unmarshal([]byte(summary), &got); err != nil {
		return []string{fmt.Sprintf("stored summary is not JSON: %s", truncate([]byte(summary)))}
	}
	return matchPartial("summary", got, want)
}

func matchPartial(path string, got, want any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s = %s, want an object", path, jsonText(got))}
		}
		var diffs []string
		for _, k := range slices.Sorted(maps.Keys(w)) {
			gv, ok := g[k]
			if !ok {
				diffs = append(diffs, fmt.Sprintf("%s has no %q (%s)", path, k, jsonText(got)))
				continue
			}
			diffs = append(diffs, matchPartial(path+"."+k, gv, w[k])...)
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s = %s, want %d elements like %s", path, jsonText(got), len(w), jsonText(want))}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, matchPartial(fmt.Sprintf("%s[%d]", path, i), g[i], w[i])...)
		}
		return diffs
	}
	if !reflect.DeepEqual(got, want) {
		return []string{fmt.Sprintf("%s = %s, want %s", path, jsonText(got), jsonText(want))}
	}
	return nil
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return truncate(b)
}
