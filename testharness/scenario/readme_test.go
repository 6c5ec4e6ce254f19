package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestScenarioTableListsEveryFile: fixtures/README.md's table of scenarios
// names every file in fixtures/scenarios and its folders, so that a host author reading it
// learns of every behaviour the kit checks.
func TestScenarioTableListsEveryFile(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "fixtures", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "\n## Scenarios\n")
	if !ok {
		t.Fatal("fixtures/README.md has no Scenarios section")
	}
	files, err := Expand([]string{filepath.Join("..", "..", "fixtures", "scenarios")})
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenario files: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		if !strings.Contains(table, "`"+name+"`") {
			t.Errorf("fixtures/README.md's scenario table does not list %s", name)
		}
	}
}
