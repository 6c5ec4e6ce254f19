// Package golden compares the plugin's outputs in tests with files under
// testdata, and holds them to the ABI schema. go test -update rewrites the
// files.
package golden

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/jirasync/jirasync/testharness/abischema"
)

var update = flag.Bool("update", false, "rewrite golden files")

// Check compares v's indented JSON with testdata/NAME.golden.json, and
// checks output, the export's whole output that carries v, against the
// schema's definition of export's output.
func Check(t *testing.T, name, export string, v, output any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	s, err := abischema.Load()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(output)
	if err := s.Validate(abischema.Output(export), out); err != nil {
		t.Error(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("output differs from %s:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
