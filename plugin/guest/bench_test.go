package guest_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/jirasync/jirasync/plugin/abi"
	"github.com/jirasync/jirasync/plugin/guest"
)

// memoryTransport answers every host function from memory: one linked
// group whose project alice is a member of, as the host's engine
// benchmarks do.
type memoryTransport map[string][]byte

func (m memoryTransport) Call(fn string, _ []byte) []byte {
	if a, ok := m[fn]; ok {
		return a
	}
	return []byte(`{}`)
}

var benchHost = memoryTransport{
	abi.FuncInstallationGet: []byte(`{"id":"jira1","external_id":"jira.example.com:k","base_url":"http://127.0.0.1:1","organizations":[{"id":"acme","inbound_assignee":true}]}`),
	abi.FuncGroupsLinked:    []byte(`{"groups":[{"id":"g1","organization":"acme","project":"backend","assignee":"bob"}]}`),
	abi.FuncUsersByEmail:    []byte(`{"users":[{"id":"alice","verified":true,"projects":["backend"]}]}`),
	abi.FuncGroupsAssign:    []byte(`{"changed":1}`),
	abi.FuncStateGet:        []byte(`{"value":"","found":false}`),
}

// BenchmarkDispatch is the guest's whole share of a delivery, the host's
// answers from memory: parse, logic and the JSON of every host call. Run
// under a wasm runtime (make bench-guest) it is the sandbox's compute
// without the cost of crossing into and out of it.
func BenchmarkDispatch(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "payloads", "large-16k.json"))
	if err != nil {
		b.Fatal(err)
	}
	small, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "payloads", "minimal-assigned.json"))
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, export string
		input        []byte
	}{
		{"describe", abi.ExportDescribe, nil},
		{"inspect-16k", abi.ExportInspectDelivery, body},
		{"handle-16k", abi.ExportHandleIssueUpdated, body},
		{"handle-350b", abi.ExportHandleIssueUpdated, small},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if out, ok := guest.Dispatch(c.export, c.input, benchHost); !ok {
					b.Fatalf("%s", out)
				}
			}
		})
	}
}
