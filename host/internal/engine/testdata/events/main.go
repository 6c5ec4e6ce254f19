//go:build wasip1

// Command events is a test plugin for the host's platform-event path
// (handle_platform_event, ABI 1.4), built before the real plugin carries
// events to Jira: it leaves a trace of every run in the installation's
// plugin state, so that tests can see which events ran, how often, in
// which order, and whether two runs of one group overlapped. Its group
// names choose a behaviour: "unavailable…" fails retryably, "rejected…"
// fails for good, "slow…" runs for 300 ms.
package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/extism/go-pdk"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/guest"
)

func main() {}

//go:wasmimport extism:host/user jirasync_state_get
func hostStateGet(uint64) uint64

//go:wasmimport extism:host/user jirasync_state_put
func hostStatePut(uint64) uint64

//go:wasmexport describe
func describe() int32 {
	out, _ := guest.Dispatch(abi.ExportDescribe, nil, nil)
	pdk.Output(out)
	return 0
}

func call(fn func(uint64) uint64, req any) []byte {
	in, _ := json.Marshal(req)
	mem := pdk.AllocateBytes(in)
	defer mem.Free()
	out := pdk.FindMemory(fn(mem.Offset()))
	return out.ReadBytes()
}

func get(key string) string {
	var resp abi.StateGetResponse
	json.Unmarshal(call(hostStateGet, abi.StateGetRequest{Key: key}), &resp)
	return resp.Value
}

func put(key, value string) {
	call(hostStatePut, abi.StatePutRequest{Key: key, Value: value})
}

func fail(code abi.ErrorCode, msg string) int32 {
	b, _ := json.Marshal(abi.Errorf(code, msg))
	pdk.SetErrorString(string(b))
	return 1
}

//go:wasmexport handle_platform_event
func handle() int32 {
	var e abi.PlatformEvent
	if err := json.Unmarshal(pdk.Input(), &e); err != nil {
		return fail(abi.CodeInvalidPayload, "not a platform event: "+err.Error())
	}
	// Every run counts, failed ones too: a retry is a run.
	runs, _ := strconv.Atoi(get("runs:" + e.ID))
	put("runs:"+e.ID, strconv.Itoa(runs+1))
	switch {
	case strings.HasPrefix(e.Group, "unavailable"):
		return fail(abi.CodeUnavailable, "jira is down")
	case strings.HasPrefix(e.Group, "rejected"):
		return fail(abi.CodeJiraRejected, "Jira said no")
	}
	if get("busy:"+e.Group) == "1" {
		put("overlap:"+e.Group, "1")
	}
	put("busy:"+e.Group, "1")
	if strings.HasPrefix(e.Group, "slow") {
		time.Sleep(300 * time.Millisecond)
	}
	put("order:"+e.Group, strings.TrimPrefix(get("order:"+e.Group)+" "+e.ID, " "))
	put("busy:"+e.Group, "0")
	out, _ := json.Marshal(abi.EventResponse{Summary: &abi.EventSummary{Outcome: abi.OutcomeSynced, Group: e.Group,
		Type: e.Type, Issues: []abi.IssueResult{}}})
	pdk.Output(out)
	return 0
}
