package engine

import (
	"context"

	"github.com/jirasync/jirasync/host/internal/capabilities"
	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/guest"
)

// Native runs the plugin's packages in the host process, through the same
// JSON envelopes and host functions as the Wasm engine, without a sandbox.
// It exists to debug plugin logic and to measure what the sandbox costs.
type Native struct {
	Caps Host
}

type nativeTransport struct {
	ctx  context.Context
	caps Host
	b    *capabilities.Binding
}

func (t nativeTransport) Call(fn string, req []byte) []byte { return t.caps.Call(t.ctx, t.b, fn, req) }

// Call implements Engine.
func (n *Native) Call(ctx context.Context, b *capabilities.Binding, export string, input []byte) ([]byte, error) {
	out, ok := guest.Dispatch(export, input, nativeTransport{ctx: ctx, caps: n.Caps, b: b})
	if ok {
		return out, nil
	}
	if e, isErr := pluginError(out); isErr {
		return nil, e
	}
	return nil, &Fault{Export: export, Reason: "bad_output", Err: errString(out)}
}

// Describe implements Engine.
func (n *Native) Describe(context.Context) (abi.Description, error) { return guest.Describe(), nil }

// Close implements Engine.
func (n *Native) Close(context.Context) error { return nil }

type errString []byte

func (e errString) Error() string { return string(e) }
