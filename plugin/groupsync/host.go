package groupsync

import "github.com/jirasync/jirasync/plugin/abi"

// Host is every capability the plugin's logic needs from outside the
// sandbox: group sync, and (since ABI 1.4) platform events and echo
// records. The wasm adapter implements it with host-function imports;
// tests and the host's native engine implement it in plain Go. Errors are
// *abi.Error so that their code survives the trip across the boundary.
type Host interface {
	Log(level, message string, fields map[string]any)
	Installation() (*abi.InstallationResponse, error)
	JiraRequest(req abi.JiraRequest) (*abi.JiraResponse, error)
	GroupsLinked(req abi.GroupsLinkedRequest) ([]abi.LinkedGroup, error)
	UsersByEmail(email string) ([]abi.PlatformUser, error)
	GroupsAssign(req abi.GroupsAssignRequest) (int, error)
	// StateGet reads the installation's state; StatePut writes it, or the
	// host-wide state when req.Shared is set.
	StateGet(key string) (value string, found bool, err error)
	StatePut(req abi.StatePutRequest) error
	// SharedStateGet reads the host-wide state (since 1.4).
	SharedStateGet(key string) (value string, found bool, err error)
	// GroupGet and UserGet (since 1.4) read one group, with its issues
	// linked through the installation, and one user; a missing one is an
	// *abi.Error with CodeNotFound.
	GroupGet(id string) (*abi.GroupInfo, error)
	UserGet(id string) (*abi.UserInfo, error)
}
