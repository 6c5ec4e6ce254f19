package scenario

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFixturesNative runs every scenario in fixtures/ with the native
// engine: the same plugin packages, host functions and simulated Jira, no
// sandbox. `make scenarios` runs them again on the real wasm plugin; the
// two agreeing is the point.
func TestFixturesNative(t *testing.T) {
	files, err := Expand([]string{filepath.Join("..", "..", "fixtures", "scenarios")})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("%d scenarios in fixtures/scenarios, want at least 25", len(files))
	}
	r := &Runner{Engine: "native"}
	for _, f := range files {
		sc, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		t.Run(sc.Name, func(t *testing.T) {
			res, err := r.Run(context.Background(), sc)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range res.Failures {
				t.Error(f)
			}
		})
	}
}

func TestLoadRefusesBadScenarios(t *testing.T) {
	tests := map[string]string{
		"misspelt key":      `{"name":"x","deliveries":[{"installation":"a","payload":{},"expect_status":200}],"expect":{"grups":[]}}`,
		"no name":           `{"deliveries":[{"installation":"a","payload":{},"expect_status":200}]}`,
		"no deliveries":     `{"name":"x"}`,
		"bad status":        `{"name":"x","deliveries":[{"installation":"a","payload":{},"expect_status":"2xy"}]}`,
		"no status":         `{"name":"x","deliveries":[{"installation":"a","payload":{}}]}`,
		"payload and body":  `{"name":"x","deliveries":[{"installation":"a","payload":{},"body":"{}","expect_status":200}]}`,
		"token and install": `{"name":"x","deliveries":[{"installation":"a","token":"t","body":"{}","expect_status":200}]}`,
		"not json":          `{"name":`,
	}
	dir := t.TempDir()
	for name, text := range tests {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err == nil {
			t.Errorf("%s: Load accepted %s", name, text)
		}
	}
}

func TestStatusExpectation(t *testing.T) {
	tests := []struct {
		raw   string
		code  int
		match bool
	}{
		{`200`, 200, true}, {`200`, 201, false}, {`"4xx"`, 401, true}, {`"4XX"`, 413, true}, {`"2xx"`, 500, false},
	}
	for _, tt := range tests {
		e, err := parseStatus(json.RawMessage(tt.raw))
		if err != nil {
			t.Fatalf("%s: %v", tt.raw, err)
		}
		if e.match(tt.code) != tt.match {
			t.Errorf("%s matches %d = %v, want %v", tt.raw, tt.code, !tt.match, tt.match)
		}
	}
}

func TestMatchSummary(t *testing.T) {
	body := []byte(`{"delivery":3,"outcome":"synced","assigned":1,"skipped":0}`)
	if d := matchSummary(body, map[string]any{"outcome": "synced", "assigned": 1.0}); len(d) != 0 {
		t.Errorf("matching summary reported %v", d)
	}
	if d := matchSummary(body, map[string]any{"assigned": 2.0, "reason": "x"}); len(d) != 2 {
		t.Errorf("two differences reported as %v", d)
	}
}
