package groupsync

import "github.com/jirasync/jirasync/plugin/abi"

// Host is every capability group sync needs from outside the sandbox. The
// wasm adapter implements it with host-function imports; tests and the
// host's native engine implement it in plain Go. Errors are *abi.Error so
// that their code survives the trip across the boundary.
type Host interface {
	Log(level, message string, fields map[string]any)
	Installation() (*abi.InstallationResponse, error)
	JiraRequest(req abi.JiraRequest) (*abi.JiraResponse, error)
	GroupsLinked(req abi.GroupsLinkedRequest) ([]abi.LinkedGroup, error)
	UsersByEmail(email string) ([]abi.PlatformUser, error)
	GroupsAssign(req abi.GroupsAssignRequest) (int, error)
	StateGet(key string) (value string, found bool, err error)
	StatePut(req abi.StatePutRequest) error
}
