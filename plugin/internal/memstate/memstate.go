// Package memstate is the plugin state in memory, the per-installation
// and the host-wide one, for the fake hosts of the plugin's tests. It
// keeps the ABI's rules that matter to the logic: Delete removes a key,
// Shared picks the host-wide state. Time does not pass in these tests,
// so TTLs are recorded, not applied.
package memstate

import (
	"strings"

	"github.com/jirasync/jirasync/plugin/abi"
)

// State holds both states and every write made to them.
type State struct {
	Local  map[string]string
	Shared map[string]string
	Puts   []abi.StatePutRequest
	// Err, when set, fails every read and write.
	Err *abi.Error
}

func (s *State) StateGet(key string) (string, bool, error) { return s.get(s.Local, key) }

func (s *State) SharedStateGet(key string) (string, bool, error) { return s.get(s.Shared, key) }

func (s *State) get(m map[string]string, key string) (string, bool, error) {
	if s.Err != nil {
		return "", false, s.Err
	}
	v, ok := m[key]
	return v, ok, nil
}

func (s *State) StatePut(req abi.StatePutRequest) error {
	if s.Err != nil {
		return s.Err
	}
	s.Puts = append(s.Puts, req)
	m := &s.Local
	if req.Shared {
		m = &s.Shared
	}
	if req.Delete {
		delete(*m, req.Key)
		return nil
	}
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[req.Key] = req.Value
	return nil
}

// EchoRecords is the echo records (plugin/echo) among a state's keys,
// never nil.
func EchoRecords(state map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range state {
		if strings.HasPrefix(k, "echo:") {
			out[k] = v
		}
	}
	return out
}
