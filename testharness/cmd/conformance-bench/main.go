// Command conformance-bench times plugin calls in several hosts through
// their conformance adapters (docs/CONFORMANCE.md), in one run and on the
// same inputs: the adapters are loaded side by side and take turns call
// by call, so that both see the same machine load.
//
//	go run ./testharness/cmd/conformance-bench -plugin build/jirasync.wasm \
//	    -adapter go=build/conformance-adapter \
//	    -adapter node="node --no-warnings testharness/nodehost/adapter.js"
//
// Each figure is the median over -n calls of the time the adapter
// measured around the export call (host functions included), and the
// same net of the time spent inside host functions: the sandbox's and the
// SDK's own cost, whatever the host functions read from.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/testharness/pluginbuild"
	"github.com/jirasync/jirasync/testharness/scenario"
)

type adapters []string

func (a *adapters) String() string     { return strings.Join(*a, ", ") }
func (a *adapters) Set(v string) error { *a = append(*a, v); return nil }

func main() {
	var list adapters
	plugin := flag.String("plugin", "", "plugin .wasm (default: $JIRASYNC_PLUGIN, else built now)")
	n := flag.Int("n", 200, "timed calls per figure and host")
	warm := flag.Int("warm", 20, "untimed calls first")
	payloads := flag.String("payloads", "fixtures/payloads", "folder of large-4k/16k/64k.json")
	flag.Var(&list, "adapter", "NAME=COMMAND, repeated: the hosts to time")
	flag.Parse()
	if len(list) == 0 {
		fmt.Fprintln(os.Stderr, "conformance-bench: give at least one -adapter NAME=COMMAND")
		os.Exit(2)
	}
	if err := run(list, *plugin, *payloads, *n, *warm); err != nil {
		fmt.Fprintln(os.Stderr, "conformance-bench:", err)
		os.Exit(1)
	}
}

// figure is one row: an export on an input.
type figure struct {
	name, export string
	input        []byte
}

func run(list []string, plugin, payloads string, n, warm int) error {
	var err error
	if plugin == "" {
		if plugin, err = pluginbuild.Path(); err != nil {
			return err
		}
	}
	var figures []figure
	figures = append(figures, figure{"empty call (describe)", abi.ExportDescribe, nil})
	for _, size := range []string{"4k", "16k", "64k"} {
		body, err := os.ReadFile(filepath.Join(payloads, "large-"+size+".json"))
		if err != nil {
			return err
		}
		if size == "16k" {
			figures = append(figures, figure{"inspect_delivery, 16 KiB (no host calls)", abi.ExportInspectDelivery, body})
		}
		figures = append(figures, figure{fmt.Sprintf("handle_issue_updated, %s body", strings.ToUpper(size[:len(size)-1])+" KiB"), abi.ExportHandleIssueUpdated, body})
	}

	var sc scenario.Scenario
	if err := json.Unmarshal([]byte(benchScenario), &sc); err != nil {
		return err
	}
	ctx := context.Background()
	names := make([]string, len(list))
	ads := make([]*scenario.Adapter, len(list))
	for i, spec := range list {
		name, cmd, ok := strings.Cut(spec, "=")
		if !ok {
			return fmt.Errorf("-adapter %q: want NAME=COMMAND", spec)
		}
		k := &scenario.Kit{Adapter: scenario.AdapterCommand(cmd), PluginPath: plugin}
		jira, ad, err := k.Load(ctx, &sc, slog.New(slog.DiscardHandler))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		defer jira.Close()
		defer ad.Close()
		names[i], ads[i] = name, ad
	}

	fmt.Printf("%d timed calls per figure and host (after %d untimed), medians; \"net\" is without the time inside host functions\n\n", n, warm)
	header := "| figure |"
	sep := "| --- |"
	for _, name := range names {
		header += fmt.Sprintf(" %s | %s net | host calls |", name, name)
		sep += " --- | --- | --- |"
	}
	for _, name := range names[1:] {
		header += fmt.Sprintf(" %s / %s | net |", name, names[0])
		sep += " --- | --- |"
	}
	fmt.Println(header)
	fmt.Println(sep)
	for _, f := range figures {
		total := make([][]time.Duration, len(ads))
		net := make([][]time.Duration, len(ads))
		calls := make([]int, len(ads))
		for round := 0; round < warm+n; round++ {
			for i, ad := range ads {
				inst := "jira1"
				r, err := ad.Do(scenario.AdapterCall{Op: "call", Installation: inst, Export: f.export, Input: f.input})
				if err != nil {
					return fmt.Errorf("%s: %s: %w", names[i], f.name, err)
				}
				if err := succeeded(f.export, r); err != nil {
					return fmt.Errorf("%s: %s: %w", names[i], f.name, err)
				}
				if round >= warm {
					total[i] = append(total[i], time.Duration(r.ElapsedNS))
					net[i] = append(net[i], time.Duration(r.ElapsedNS-r.HostNS))
					calls[i] = r.HostCalls
				}
			}
		}
		row := "| " + f.name + " |"
		for i := range ads {
			row += fmt.Sprintf(" %s | %s | %d |", show(median(total[i])), show(median(net[i])), calls[i])
		}
		for i := 1; i < len(ads); i++ {
			row += fmt.Sprintf(" %.1fx | %.1fx |", ratio(median(total[i]), median(total[0])), ratio(median(net[i]), median(net[0])))
		}
		fmt.Println(row)
	}
	return nil
}

// succeeded refuses to time a call that failed: a fast error is no figure.
func succeeded(export string, r *scenario.AdapterReply) error {
	if r.ExportError != "" || r.Fault != "" {
		return fmt.Errorf("call failed: %s%s", r.ExportError, r.Fault)
	}
	if export == abi.ExportHandleIssueUpdated {
		var out abi.HandleResponse
		if err := json.Unmarshal(r.Output, &out); err != nil || out.Summary == nil || out.Summary.Outcome != abi.OutcomeSynced {
			return fmt.Errorf("not synced: %.200s", r.Output)
		}
	}
	return nil
}

// benchScenario is the platform the large payloads sync against: APP-1
// linked to one group of a project alice (alice@example.com, in the
// payload: no Jira lookup) is a member of.
const benchScenario = `{"name": "bench", "level": "plugin",
 "platform": {"organizations": [{"id": "acme"}], "projects": [{"id": "backend", "organization": "acme"}],
  "users": [{"id": "alice", "emails": [{"email": "alice@example.com", "verified": true}], "projects": ["backend"]}],
  "groups": [{"id": "g1", "project": "backend", "assignee": null}],
  "installations": [{"id": "jira1", "external_id": "jira.example.com:jirasync", "webhook_secret": "s3cret", "organizations": [{"id": "acme"}]}],
  "links": [{"group": "g1", "installation": "jira1", "issue_key": "APP-1"}]}}`

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func show(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0f µs", float64(d)/float64(time.Microsecond))
	}
}
