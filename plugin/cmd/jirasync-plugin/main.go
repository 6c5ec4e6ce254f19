//go:build wasip1

// Command jirasync-plugin is the wasm adapter: it moves bytes between the
// Extism runtime and package guest, and nothing else. Build it with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
//
// (c-shared makes a reactor module whose _initialize the host runs once;
// nothing here calls it).
package main

import (
	"github.com/extism/go-pdk"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/guest"
)

func main() {}

//go:wasmexport describe
func describe() int32 { return run(abi.ExportDescribe) }

//go:wasmexport handle_issue_updated
func handleIssueUpdated() int32 { return run(abi.ExportHandleIssueUpdated) }

//go:wasmexport register_webhook
func registerWebhook() int32 { return run(abi.ExportRegisterWebhook) }

//go:wasmexport unregister_webhook
func unregisterWebhook() int32 { return run(abi.ExportUnregisterWebhook) }

//go:wasmexport inspect_delivery
func inspectDelivery() int32 { return run(abi.ExportInspectDelivery) }

//go:wasmexport handle_platform_event
func handlePlatformEvent() int32 { return run(abi.ExportHandlePlatformEvent) }

// run dispatches an export. On failure it both sets the Extism error and
// returns 1, so a host sees the failure whichever of the two it checks.
func run(export string) int32 {
	out, ok := guest.Dispatch(export, input(), transport{})
	if !ok {
		pdk.SetErrorString(string(out))
		return 1
	}
	// As pdk.Output: the runtime owns the block once it is the output.
	pdk.OutputMemory(store(out))
	return 0
}
