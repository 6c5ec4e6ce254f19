// Command conformance-adapter is the conformance kit's adapter for the Go
// host (docs/CONFORMANCE.md): it speaks the kit's line-delimited JSON
// protocol on stdin and stdout and runs the plugin with the host's own
// parts, in-process: the wasm engine (host/internal/engine), the real host
// functions (host/internal/capabilities, whose jiraclient signs with
// OAuth), and the built-in platform and plugin state in a temporary
// SQLite store. It lives under host/ because Go lets only host's packages
// import host/internal.
//
//	go run ./host/internal/cmd/conformance-adapter [-cache-dir DIR]
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/host/internal/engine"
	"github.com/jirasync/jirasync/host/internal/jiraclient"
	"github.com/jirasync/jirasync/host/internal/secrets"
	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/testharness/scenario"
)

func main() {
	cacheDir := flag.String("cache-dir", filepath.Join(os.TempDir(), "jirasync-scenario-cache"), "wazero compilation cache")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "go-adapter")
	a := &adapter{cacheDir: *cacheDir, log: log}
	if err := a.serve(context.Background(), os.Stdin, os.Stdout); err != nil {
		log.Error("adapter stopped", "error", err)
		os.Exit(1)
	}
}

type adapter struct {
	cacheDir string
	log      *slog.Logger

	dir           string
	st            *store.Store
	eng           engine.Engine
	host          *recorder
	installations map[string]store.Installation
	deliveries    int64
}

// serve answers one request per line until "close" or the end of input.
func (a *adapter) serve(ctx context.Context, in *os.File, out *os.File) error {
	defer a.shutdown(ctx)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 8<<20) // a 1 MiB body is 1.4 MiB in base64
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var req struct {
			Op string `json:"op"`
		}
		var reply any
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			reply = failure(fmt.Errorf("request is not JSON: %w", err))
		} else {
			reply = a.do(ctx, req.Op, sc.Bytes())
		}
		if err := enc.Encode(reply); err != nil {
			return err
		}
		if req.Op == "close" {
			return nil
		}
	}
	return sc.Err()
}

func failure(err error) scenario.AdapterReply { return scenario.AdapterReply{Error: err.Error()} }

func (a *adapter) do(ctx context.Context, op string, line []byte) scenario.AdapterReply {
	var err error
	reply := scenario.AdapterReply{OK: true}
	switch op {
	case "load":
		var req scenario.AdapterLoad
		if err = json.Unmarshal(line, &req); err == nil {
			err = a.load(ctx, req)
		}
	case "call":
		var req scenario.AdapterCall
		if err = json.Unmarshal(line, &req); err == nil {
			reply, err = a.call(ctx, req)
		}
	case "groups":
		reply.Groups, err = a.groups(ctx)
	case "state":
		reply.State, err = a.host.state(ctx, a.st)
	case "close":
		err = a.shutdown(ctx)
	default:
		err = fmt.Errorf("unknown op %q", op)
	}
	if err != nil {
		return failure(err)
	}
	return reply
}

func (a *adapter) load(ctx context.Context, req scenario.AdapterLoad) error {
	if a.st != nil {
		return errors.New("already loaded")
	}
	// Each version adds to the one before: a kit speaking 1 sends what
	// this adapter reads too.
	if req.Protocol < 1 || req.Protocol > scenario.ProtocolVersion {
		return fmt.Errorf("protocol %d: this adapter speaks 1 to %d", req.Protocol, scenario.ProtocolVersion)
	}
	module, err := os.ReadFile(req.Plugin)
	if err != nil {
		return err
	}
	if a.dir, err = os.MkdirTemp("", "jirasync-adapter-"); err != nil {
		return err
	}
	key := make([]byte, 32)
	rand.Read(key)
	box, err := secrets.NewBox(key)
	if err != nil {
		return err
	}
	if a.st, err = store.Open(ctx, filepath.Join(a.dir, "jirasync.db"), box); err != nil {
		return err
	}
	// The platform as an operator's import, links after the
	// installations they name.
	data := req.Platform
	data.Links = nil
	if err := a.st.ImportData(ctx, &data); err != nil {
		return err
	}
	a.installations = map[string]store.Installation{}
	for _, in := range req.Installations {
		si := store.Installation{ID: in.ID, ExternalID: in.ExternalID, BaseURL: in.BaseURL, ConsumerKey: in.ConsumerKey,
			PrivateKeyPEM: in.PrivateKeyPEM, AccessToken: in.AccessToken, AccessTokenSecret: in.AccessTokenSecret,
			WebhookSecret: in.WebhookSecret, VerifyTLS: true}
		for _, o := range in.Organizations {
			org := store.InstallationOrg{ID: o.ID, InboundAssignee: o.InboundAssignee, InboundStatus: o.InboundStatus,
				OutboundAssignee: o.OutboundAssignee, OutboundStatus: o.OutboundStatus}
			for _, m := range o.StatusMappings {
				org.StatusMappings = append(org.StatusMappings, store.StatusMapping(m))
			}
			si.Organizations = append(si.Organizations, org)
		}
		if err := a.st.PutInstallation(ctx, si); err != nil {
			return fmt.Errorf("installation %s: %w", in.ID, err)
		}
		a.installations[in.ID] = si
	}
	if err := a.st.ImportData(ctx, &platform.Data{Links: req.Platform.Links}); err != nil {
		return err
	}
	a.host = &recorder{Set: &capabilities.Set{Store: a.st, Platform: a.st, Jira: jiraclient.New()}, keys: map[string]map[string]bool{}}
	a.eng, err = engine.NewWasm(ctx, a.host, engine.WasmConfig{Module: module, CacheDir: a.cacheDir, PoolSize: 1, Logger: a.log})
	return err
}

// call runs one export for one installation, as the host's pipeline does:
// a delivery's staged assignments are applied once it succeeded.
func (a *adapter) call(ctx context.Context, req scenario.AdapterCall) (scenario.AdapterReply, error) {
	if a.eng == nil {
		return scenario.AdapterReply{}, errors.New("not loaded")
	}
	b := &capabilities.Binding{Logger: a.log.With("export", req.Export)}
	// A platform event is a delivery too (ABI 1.4): the host stores and
	// binds it like a webhook's.
	delivery := req.Export == abi.ExportHandleIssueUpdated || req.Export == abi.ExportHandlePlatformEvent
	if req.Installation != "" && req.Export != abi.ExportDescribe && req.Export != abi.ExportInspectDelivery {
		// describe and inspect_delivery are bound to nothing (docs/ABI.md).
		in, ok := a.installations[req.Installation]
		if !ok {
			return scenario.AdapterReply{}, fmt.Errorf("unknown installation %q", req.Installation)
		}
		b.Installation = in
		if delivery {
			a.deliveries++
			b.Delivery = a.deliveries
		}
	}
	a.host.reset()
	start := time.Now()
	out, err := a.eng.Call(ctx, b, req.Export, req.Input)
	reply := scenario.AdapterReply{OK: true, Output: out, ElapsedNS: time.Since(start).Nanoseconds()}
	reply.HostNS, reply.HostCalls = a.host.spent()
	var perr *abi.Error
	var fault *engine.Fault
	switch {
	case errors.As(err, &perr):
		text, _ := json.Marshal(perr)
		reply.ExportError = string(text)
		return reply, nil
	case errors.As(err, &fault):
		reply.Fault = fault.Error()
		return reply, nil
	case err != nil:
		return scenario.AdapterReply{}, err
	}
	// A webhook's staged changes are applied once it succeeded; an
	// event's are not: its effect is in Jira, and applying them would
	// carry the platform's own change back to it (the pipeline's rule).
	if req.Export == abi.ExportHandleIssueUpdated {
		var resp abi.HandleResponse
		if json.Unmarshal(out, &resp) == nil && resp.Summary != nil && resp.Error == nil && len(b.Staged)+len(b.StagedStatuses) > 0 {
			ch := platform.Changes{Assignments: b.Staged, Statuses: b.StagedStatuses}
			if _, err := a.st.Apply(ctx, platform.ApplyKey{Installation: b.Installation.ID, Delivery: b.Delivery, Round: 1}, ch); err != nil {
				return scenario.AdapterReply{}, fmt.Errorf("applying: %w", err)
			}
		}
	}
	return reply, nil
}

func (a *adapter) groups(ctx context.Context) ([]scenario.AdapterGroup, error) {
	out := []scenario.AdapterGroup{}
	page := store.Page{Limit: store.MaxPageLimit}
	for {
		gs, err := a.st.ListGroups(ctx, page, "")
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			out = append(out, scenario.AdapterGroup{ID: g.ID, Assignee: g.Assignee, Status: g.Status})
		}
		if len(gs) < page.Limit {
			return out, nil
		}
		page.After = gs[len(gs)-1].ID
	}
}

func (a *adapter) shutdown(ctx context.Context) error {
	var errs []error
	if a.eng != nil {
		errs = append(errs, a.eng.Close(ctx))
		a.eng = nil
	}
	if a.st != nil {
		errs = append(errs, a.st.Close())
		a.st = nil
	}
	if a.dir != "" {
		errs = append(errs, os.RemoveAll(a.dir))
		a.dir = ""
	}
	return errors.Join(errs...)
}

// recorder is the host's capabilities, noting which state keys the plugin
// wrote so that "state" can read them back from the store (the store
// itself has no listing, and the host needs none), and the time the
// current export spends in host functions.
type recorder struct {
	*capabilities.Set
	mu     sync.Mutex
	keys   map[string]map[string]bool // installation -> key
	hostNS int64
	calls  int
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.hostNS, r.calls = 0, 0
	r.mu.Unlock()
}

func (r *recorder) spent() (int64, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hostNS, r.calls
}

func (r *recorder) Call(ctx context.Context, b *capabilities.Binding, fn string, req []byte) []byte {
	start := time.Now()
	defer func() {
		r.mu.Lock()
		r.hostNS += time.Since(start).Nanoseconds()
		r.calls++
		r.mu.Unlock()
	}()
	if fn == abi.FuncStatePut {
		var p abi.StatePutRequest
		// The host-wide state (shared, ABI 1.4) is no installation's:
		// "state" lists the installations' only.
		if json.Unmarshal(req, &p) == nil && p.Key != "" && !p.Shared {
			r.mu.Lock()
			if r.keys[b.Installation.ID] == nil {
				r.keys[b.Installation.ID] = map[string]bool{}
			}
			r.keys[b.Installation.ID][p.Key] = true
			r.mu.Unlock()
		}
	}
	return r.Set.Call(ctx, b, fn, req)
}

// state reads every key the plugin wrote that is still there.
func (r *recorder) state(ctx context.Context, st *store.Store) (map[string]map[string]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]map[string]string{}
	for inst, keys := range r.keys {
		for k := range keys {
			v, found, err := st.StateGet(ctx, inst, k)
			if err != nil {
				return nil, err
			}
			if found {
				if out[inst] == nil {
					out[inst] = map[string]string{}
				}
				out[inst][k] = v
			}
		}
	}
	return out, nil
}
