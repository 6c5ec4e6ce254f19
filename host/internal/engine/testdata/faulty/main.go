//go:build wasip1

// Command faulty is a test plugin that misbehaves on request, to prove that
// the engine survives a guest that panics, loops, hoards memory, returns
// garbage or lies about its result. Its input, or the "fault" member of a
// JSON input, names the fault.
package main

import (
	"encoding/json"

	"github.com/extism/go-pdk"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/guest"
)

func main() {}

//go:wasmexport describe
func describe() int32 {
	out, _ := guest.Dispatch(abi.ExportDescribe, nil, nil)
	pdk.Output(out)
	return 0
}

//go:wasmimport extism:host/user jirasync_groups_linked
func hostGroupsLinked(uint64) uint64

var hoard [][]byte

//go:wasmexport handle_issue_updated
func handle() int32 {
	mode := string(pdk.Input())
	var req struct{ Fault string }
	if json.Unmarshal(pdk.Input(), &req) == nil {
		mode = req.Fault
	}
	switch mode {
	case "panic":
		panic("faulty plugin panics")
	case "loop":
		for {
		}
	case "memory":
		for {
			hoard = append(hoard, make([]byte, 8<<20))
		}
	case "bad_output":
		pdk.OutputString("this is not JSON")
		return 0
	case "rc_no_error":
		return 3
	case "error":
		pdk.SetErrorString(`{"code":"unavailable","message":"jira is down"}`)
		return 1
	case "internal":
		pdk.SetErrorString(`{"code":"internal","message":"a bug"}`)
		return 1
	case "host_garbage":
		// A malformed request to a host function must come back as an
		// error envelope, not a trap.
		in := pdk.AllocateString("{not json")
		out := pdk.FindMemory(hostGroupsLinked(in.Offset()))
		pdk.Output(out.ReadBytes())
		return 0
	}
	pdk.OutputString(`{"summary":{"outcome":"ignored","reason":"no_changelog","assigned":0,"unassigned":0,"unchanged":0,"skipped":0,"groups":[]}}`)
	return 0
}
