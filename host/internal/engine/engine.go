// Package engine runs the plugin's exports. Two engines implement the same
// contract: Wasm runs the compiled plugin in the Extism/wazero sandbox, the
// production engine; Native links the same plugin packages into the host,
// for debugging and as the physical limit in benchmarks.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/plugin/abi"
)

// Engine calls plugin exports. Implementations are safe for concurrent use.
type Engine interface {
	// Call runs export with input for binding b. A failure the plugin
	// reported comes back as *abi.Error; a fault of the sandbox itself (a
	// trap, a time-out, an unreadable answer) as *Fault.
	Call(ctx context.Context, b *capabilities.Binding, export string, input []byte) ([]byte, error)
	// Describe returns the plugin's self-description.
	Describe(ctx context.Context) (abi.Description, error)
	Close(ctx context.Context) error
}

// Host answers the plugin's host-function calls: a JSON request in, a JSON
// response out, failures inside it. capabilities.Set is the product's;
// benchmarks use one that answers from memory.
type Host interface {
	Call(ctx context.Context, b *capabilities.Binding, function string, request []byte) []byte
}

// Fault is a failure of the plugin call itself, as opposed to one the
// plugin reported. It is always worth a retry with a fresh instance.
type Fault struct {
	Export string
	Reason string // trap, timeout, bad_output, no_instance
	Err    error
}

func (f *Fault) Error() string { return fmt.Sprintf("plugin %s: %s: %v", f.Export, f.Reason, f.Err) }
func (f *Fault) Unwrap() error { return f.Err }

// HandleIssueUpdated runs the handle_issue_updated export on a webhook body
// and decodes its summary.
func HandleIssueUpdated(ctx context.Context, e Engine, b *capabilities.Binding, body []byte) (*abi.Summary, error) {
	return handle[abi.Summary](ctx, e, b, abi.ExportHandleIssueUpdated, body)
}

// HandlePlatformEvent runs the handle_platform_event export (ABI 1.4) on a
// stored platform event (an abi.PlatformEvent as JSON) and decodes its
// summary.
func HandlePlatformEvent(ctx context.Context, e Engine, b *capabilities.Binding, event []byte) (*abi.EventSummary, error) {
	return handle[abi.EventSummary](ctx, e, b, abi.ExportHandlePlatformEvent, event)
}

// handle runs an export that answers a summary (S) or an error, in the
// envelope abi.HandleResponse and abi.EventResponse share.
func handle[S any](ctx context.Context, e Engine, b *capabilities.Binding, export string, input []byte) (*S, error) {
	out, err := e.Call(ctx, b, export, input)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Summary *S `json:"summary"`
		abi.Fault
	}
	if err := json.Unmarshal(out, &resp); err != nil || (resp.Summary == nil && resp.Error == nil) {
		return nil, &Fault{Export: export, Reason: "bad_output",
			Err: fmt.Errorf("output is not a %s response: %.200q", export, out)}
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	return resp.Summary, nil
}

// InspectDelivery runs the inspect_delivery export on a webhook body. The
// Go host calls webhook.Inspect natively instead; this is what another
// host does, and what proves the export agrees with it.
func InspectDelivery(ctx context.Context, e Engine, b *capabilities.Binding, body []byte) (*abi.Inspection, error) {
	out, err := e.Call(ctx, b, abi.ExportInspectDelivery, body)
	if err != nil {
		return nil, err
	}
	var resp abi.InspectResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.Inspection == nil {
		return nil, &Fault{Export: abi.ExportInspectDelivery, Reason: "bad_output",
			Err: fmt.Errorf("output is not an inspect response: %.200q", out)}
	}
	return resp.Inspection, nil
}

// RegisterWebhook runs register_webhook for the installation in b, whose
// WebhookURL and secret the host substitutes into the registration.
func RegisterWebhook(ctx context.Context, e Engine, b *capabilities.Binding, req abi.RegisterWebhookRequest) (*abi.RegisterWebhookResponse, error) {
	in, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	out, err := e.Call(ctx, b, abi.ExportRegisterWebhook, in)
	if err != nil {
		return nil, err
	}
	var resp abi.RegisterWebhookResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.Webhook == nil {
		return nil, &Fault{Export: abi.ExportRegisterWebhook, Reason: "bad_output", Err: fmt.Errorf("output %.200q", out)}
	}
	return &resp, nil
}

// UnregisterWebhook runs unregister_webhook.
func UnregisterWebhook(ctx context.Context, e Engine, b *capabilities.Binding, ref abi.WebhookRef) error {
	in, err := json.Marshal(abi.UnregisterWebhookRequest{Webhook: ref})
	if err != nil {
		return err
	}
	_, err = e.Call(ctx, b, abi.ExportUnregisterWebhook, in)
	return err
}

// pluginError reads the error a plugin reported; ok is false when the text
// is not an encoded abi.Error (a trap message, for instance).
func pluginError(text []byte) (*abi.Error, bool) {
	var e abi.Error
	if err := json.Unmarshal(text, &e); err != nil || e.Code == "" {
		return nil, false
	}
	return &e, true
}

// checkDescription refuses a plugin built for another ABI major version.
func checkDescription(d abi.Description, offered []string) error {
	if major(d.ABIVersion) != major(abi.Version) {
		return fmt.Errorf("plugin %s %s speaks ABI %q; this host speaks %q", d.Name, d.Version, d.ABIVersion, abi.Version)
	}
	have := map[string]bool{}
	for _, f := range offered {
		have[f] = true
	}
	for _, f := range d.Imports {
		if !have[f] {
			return fmt.Errorf("plugin %s imports host function %s, which this host does not offer", d.Name, f)
		}
	}
	return nil
}

func major(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] == '.' {
			return v[:i]
		}
	}
	return v
}

// ErrClosed is returned by calls on a closed engine.
var ErrClosed = errors.New("engine closed")
