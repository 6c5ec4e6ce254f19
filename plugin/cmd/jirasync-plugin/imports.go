//go:build wasip1

package main

import (
	"github.com/extism/go-pdk"

	"github.com/jirasync/jirasync/plugin/abi"
)

// Every host function takes the offset of an Extism memory block holding
// the JSON request and returns the offset of one holding the JSON response.

//go:wasmimport extism:host/user jirasync_log
func hostLog(uint64) uint64

//go:wasmimport extism:host/user jirasync_installation_get
func hostInstallationGet(uint64) uint64

//go:wasmimport extism:host/user jirasync_jira_request
func hostJiraRequest(uint64) uint64

//go:wasmimport extism:host/user jirasync_groups_linked
func hostGroupsLinked(uint64) uint64

//go:wasmimport extism:host/user jirasync_users_by_email
func hostUsersByEmail(uint64) uint64

//go:wasmimport extism:host/user jirasync_groups_assign
func hostGroupsAssign(uint64) uint64

//go:wasmimport extism:host/user jirasync_state_get
func hostStateGet(uint64) uint64

//go:wasmimport extism:host/user jirasync_state_put
func hostStatePut(uint64) uint64

//go:wasmimport extism:host/user jirasync_group_get
func hostGroupGet(uint64) uint64

//go:wasmimport extism:host/user jirasync_user_get
func hostUserGet(uint64) uint64

var imports = map[string]func(uint64) uint64{
	abi.FuncLog:             hostLog,
	abi.FuncInstallationGet: hostInstallationGet,
	abi.FuncJiraRequest:     hostJiraRequest,
	abi.FuncGroupsLinked:    hostGroupsLinked,
	abi.FuncUsersByEmail:    hostUsersByEmail,
	abi.FuncGroupsAssign:    hostGroupsAssign,
	abi.FuncStateGet:        hostStateGet,
	abi.FuncStatePut:        hostStatePut,
	abi.FuncGroupGet:        hostGroupGet,
	abi.FuncUserGet:         hostUserGet,
}

// transport carries guest.Transport calls: as a direct call (ABI 1.6,
// direct.go) when the host makes them, else over the classic imports above.
type transport struct{}

func (transport) Call(function string, request []byte) []byte {
	fn, ok := imports[function]
	if !ok {
		return []byte(`{"error":{"code":"internal","message":"plugin has no import for ` + function + `"}}`)
	}
	if answer, ok := callDirect(function, request); ok {
		return answer
	}
	in := store(request)
	defer in.Free()
	outOffset := fn(in.Offset())
	if outOffset == 0 {
		return []byte(`{"error":{"code":"internal","message":"host returned no response to ` + function + `"}}`)
	}
	out := pdk.FindMemory(outOffset)
	defer out.Free()
	return load(out)
}
