// Package scenario reads scenario files (fixtures/README.md documents the
// format) and runs them through the real host, with the real plugin,
// against the simulated Jira Server.
package scenario

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jirasync/jirasync/host/platform"
)

// Scenario is one behaviour: platform data, what the simulated Jira knows,
// the webhooks to send and what must hold afterwards.
type Scenario struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// Level is LevelPlugin or LevelHTTP: whether the conformance kit can
	// run the scenario through a host's adapter (fixtures/README.md).
	Level      string     `json:"level"`
	Platform   Platform   `json:"platform"`
	Jira       Jira       `json:"jira"`
	Deliveries []Delivery `json:"deliveries"`
	Expect     Expect     `json:"expect"`

	// Path is the file the scenario came from; payload paths are relative
	// to its folder.
	Path string `json:"-"`
}

// Platform is the data seeded into the host before the deliveries: a
// platform data file (what `jirasync platform import` reads, in the same
// types), plus the installations, which the runner connects to the
// simulated Jira.
type Platform struct {
	platform.Data
	Installations []Installation `json:"installations"`
}

// Installation is a Jira connection. The runner points it at the simulated
// Jira and gives it real OAuth credentials there.
type Installation struct {
	ID            string `json:"id"`
	ExternalID    string `json:"external_id"`
	WebhookSecret string `json:"webhook_secret"`
	ConsumerKey   string `json:"consumer_key,omitempty"`
	Organizations []struct {
		ID              string `json:"id"`
		InboundAssignee *bool  `json:"inbound_assignee"` // absent means true
		InboundStatus   bool   `json:"inbound_status"`
	} `json:"organizations"`
}

// Jira is what the simulated Jira Server knows.
type Jira struct {
	Users []struct {
		Name         string `json:"name"`
		Key          string `json:"key"`
		EmailAddress string `json:"emailAddress,omitempty"`
		DisplayName  string `json:"displayName,omitempty"`
	} `json:"users"`
	Down    bool   `json:"down"`
	Version string `json:"version,omitempty"`
	// Statuses replace the simulated Jira's workflow statuses
	// (fakejira.DefaultStatuses when left out).
	Statuses []JiraStatus `json:"statuses,omitempty"`
}

// JiraStatus is one of the simulated Jira's workflow statuses; Category
// is its statusCategory key ("new", "indeterminate", "done").
type JiraStatus struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Category string `json:"category"`
}

// Delivery is one HTTP request to the webhook endpoint.
type Delivery struct {
	Installation  string          `json:"installation,omitempty"`
	Token         *string         `json:"token,omitempty"`
	Forge         *Forge          `json:"forge,omitempty"`
	Payload       json.RawMessage `json:"payload,omitempty"`
	Body          *string         `json:"body,omitempty"`
	Method        string          `json:"method,omitempty"`
	TrailingSlash bool            `json:"trailing_slash,omitempty"`
	PadBytes      int             `json:"pad_bytes,omitempty"`
	JiraDown      *bool           `json:"jira_down,omitempty"`
	JiraStatus    *int            `json:"jira_status,omitempty"`
	ExpectStatus  json.RawMessage `json:"expect_status,omitempty"`
	ExpectSummary map[string]any  `json:"expect_summary,omitempty"`
}

// Forge builds a token from exactly these parts, to test refusals.
type Forge struct {
	Claims map[string]any `json:"claims"`
	Secret string         `json:"secret"`
	Alg    string         `json:"alg"`
}

// Expect is checked after every delivery has been answered.
type Expect struct {
	Groups []struct {
		ID       string  `json:"id"`
		Assignee *string `json:"assignee"`
		// Status, when given, is the group's status after all deliveries.
		Status string `json:"status,omitempty"`
	} `json:"groups"`
	JiraLookups *int `json:"jira_lookups,omitempty"`
	// JiraStatusLookups, when given, is how many times the status list
	// (/rest/api/2/status) was read.
	JiraStatusLookups *int `json:"jira_status_lookups,omitempty"`
	// Deliveries, when given, lists every stored delivery in the order
	// stored: refused requests are not stored, duplicates are stored once.
	Deliveries []ExpectDelivery `json:"deliveries,omitempty"`
}

// ExpectDelivery is what one stored delivery must look like once settled.
type ExpectDelivery struct {
	Status   string `json:"status"`
	Attempts *int   `json:"attempts,omitempty"`
	IssueKey string `json:"issue_key,omitempty"`
}

// Scenario levels. A plugin-level scenario's behaviour is the plugin's
// and the host functions': every delivery is a well-formed body for a
// known installation, and no two of them need the host's pipeline (no
// duplicates, no out-of-order events, no retries). An HTTP-level scenario
// needs the webhook endpoint: tokens, methods, sizes, the durable
// pipeline's deduplication, ordering and backoff.
const (
	LevelPlugin = "plugin"
	LevelHTTP   = "http"
)

// Load reads one scenario file. Unknown keys are an error: a misspelt
// expectation must not pass silently.
func Load(path string) (*Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var sc Scenario
	if err := dec.Decode(&sc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if sc.Name == "" {
		return nil, fmt.Errorf("%s: scenario has no name", path)
	}
	if len(sc.Deliveries) == 0 {
		return nil, fmt.Errorf("%s: scenario has no deliveries", path)
	}
	switch sc.Level {
	case LevelPlugin, LevelHTTP:
	default:
		return nil, fmt.Errorf("%s: level %q: want %q or %q", path, sc.Level, LevelPlugin, LevelHTTP)
	}
	for i, d := range sc.Deliveries {
		if sc.Level == LevelPlugin {
			if err := pluginLevel(d); err != nil {
				return nil, fmt.Errorf("%s: delivery %d: %w (mark the scenario %q)", path, i+1, err, LevelHTTP)
			}
		}
		if len(d.ExpectStatus) == 0 {
			return nil, fmt.Errorf("%s: delivery %d has no expect_status", path, i+1)
		}
		if _, err := parseStatus(d.ExpectStatus); err != nil {
			return nil, fmt.Errorf("%s: delivery %d: %w", path, i+1, err)
		}
		if (d.Payload != nil) == (d.Body != nil) {
			return nil, fmt.Errorf("%s: delivery %d needs exactly one of payload and body", path, i+1)
		}
		n := 0
		for _, set := range []bool{d.Installation != "", d.Token != nil, d.Forge != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return nil, fmt.Errorf("%s: delivery %d needs exactly one of installation, token and forge", path, i+1)
		}
	}
	sc.Path = path
	return &sc, nil
}

// Expand turns files and folders into the scenario files they hold
// (*.json, recursively), in a stable order.
func Expand(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			out = append(out, p)
			continue
		}
		var found []string
		err = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, ".json") {
				found = append(found, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		sort.Strings(found)
		out = append(out, found...)
	}
	return out, nil
}

// statusExpectation is an exact status or a class ("4xx").
type statusExpectation struct {
	exact int
	class int
}

func parseStatus(raw json.RawMessage) (statusExpectation, error) {
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		if n < 100 || n > 599 {
			return statusExpectation{}, fmt.Errorf("expect_status %d is not an HTTP status", n)
		}
		return statusExpectation{exact: n}, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && len(s) == 3 && s[0] >= '1' && s[0] <= '5' && strings.ToLower(s[1:]) == "xx" {
		return statusExpectation{class: int(s[0] - '0')}, nil
	}
	return statusExpectation{}, fmt.Errorf("expect_status %s: want a status like 200 or a class like \"4xx\"", raw)
}

func (e statusExpectation) match(status int) bool {
	if e.exact != 0 {
		return status == e.exact
	}
	return status/100 == e.class
}

func (e statusExpectation) String() string {
	if e.exact != 0 {
		return fmt.Sprint(e.exact)
	}
	return fmt.Sprintf("%dxx", e.class)
}

// pluginLevel refuses what only the webhook endpoint can do: a delivery of
// a plugin-level scenario is a body sent for a known installation.
func pluginLevel(d Delivery) error {
	switch {
	case d.Installation == "":
		return fmt.Errorf("a plugin-level delivery names its installation (no token or forge)")
	case d.Method != "" || d.TrailingSlash || d.PadBytes != 0:
		return fmt.Errorf("method, trailing_slash and pad_bytes are HTTP-level")
	}
	for k := range d.ExpectSummary {
		if k == "delivery" || k == "duplicate" || k == "next_attempt_at" {
			return fmt.Errorf("expect_summary %q is the pipeline's", k)
		}
	}
	return nil
}
