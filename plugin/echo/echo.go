// Package echo recognises the echo of jirasync's own writes. When the
// plugin changes a Jira issue, Jira sends the change back as a webhook;
// when inbound sync changes a platform group, the platform may send it
// back as an event. Before each write the plugin records what it is about
// to set (issue or group, field, value) for a short time; a change that
// comes back with exactly that value within the window is the echo and is
// not applied again, nor passed on to other links. A change with another
// value is a person's: the record is dropped and the change goes through.
package echo

import (
	"github.com/jirasync/jirasync/plugin/abi"
)

// TTLSeconds is how long a record waits for its echo. Jira and a platform
// send their webhook or event within seconds; two minutes leave room for
// a delivery's retries while keeping short the window in which a person's
// change to exactly the value jirasync just wrote would be taken for the
// echo.
const TTLSeconds = 120

// Fields whose writes are recorded.
const (
	FieldAssignee = "assignee"
	FieldStatus   = "status"
)

// Store is the plugin state the records live in: per installation for
// Jira records (a Jira issue's webhook comes back to the installation
// that wrote it), host-wide for group records (a platform's event comes
// back to every installation). groupsync.Host satisfies it.
type Store interface {
	StateGet(key string) (value string, found bool, err error)
	SharedStateGet(key string) (value string, found bool, err error)
	StatePut(req abi.StatePutRequest) error
}

// Record is one kind of record: where it lives and what it is keyed by.
type Record struct {
	Key    string
	Shared bool
}

// Jira is the record of a write to a field of a Jira issue, kept in the
// installation's state.
func Jira(issueKey, field string) Record {
	return Record{Key: "echo:jira:" + issueKey + ":" + field}
}

// Group is the record of a write to a field of a platform group, kept in
// the host-wide state.
func Group(group, field string) Record {
	return Record{Key: "echo:group:" + group + ":" + field, Shared: true}
}

// Write records that value is about to be written. It is written before
// the write itself: the echo can arrive before the writer hears back.
func (r Record) Write(s Store, value string) error {
	return s.StatePut(abi.StatePutRequest{Key: r.Key, Value: value, TTLSeconds: TTLSeconds, Shared: r.Shared})
}

// Drop removes the record: the write it announced did not happen.
func (r Record) Drop(s Store) error {
	return s.StatePut(abi.StatePutRequest{Key: r.Key, Delete: true, Shared: r.Shared})
}

// Seen reports whether value, just observed, is the echo of the recorded
// write. A record with another value is dropped, so that a person who
// later sets the value jirasync wrote is not mistaken for its echo. The
// record of a matching echo stays until it expires: a group's event comes
// to every installation, and each must recognise it.
func (r Record) Seen(s Store, value string) (bool, error) {
	get := s.StateGet
	if r.Shared {
		get = s.SharedStateGet
	}
	v, found, err := get(r.Key)
	if err != nil || !found {
		return false, err
	}
	if v == value {
		return true, nil
	}
	return false, r.Drop(s)
}
