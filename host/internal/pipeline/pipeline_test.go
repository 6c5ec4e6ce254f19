package pipeline

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/jirasync/jirasync/host/store"
	"github.com/jirasync/jirasync/plugin/abi"
)

// TestErrorTableMatchesDocs reads the error table of docs/ABI.md: each
// code's retryability and webhook answer there must be what the code does
// (a retryable failure is kept for a retry and answered 503).
func TestErrorTableMatchesDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "ABI.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, errors, ok := strings.Cut(string(doc), "\n## Errors\n")
	if !ok {
		t.Fatal("docs/ABI.md has no Errors section")
	}
	rows := map[abi.ErrorCode][]string{}
	for _, line := range strings.Split(errors, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), "|")
		if len(cells) < 3 || !strings.HasPrefix(strings.TrimSpace(cells[0]), "`") {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[abi.ErrorCode(strings.Trim(cells[0], "`"))] = cells
	}
	for _, c := range abi.Codes {
		row, ok := rows[c]
		if !ok {
			t.Errorf("docs/ABI.md's error table lacks %s", c)
			continue
		}
		delete(rows, c)
		wantRetry, wantStatus := "no", StatusFor(c)
		if c.Retryable() {
			wantRetry, wantStatus = "yes", http.StatusServiceUnavailable
		}
		if !strings.HasPrefix(row[1], wantRetry) {
			t.Errorf("%s: docs say retryable %q, the code %q", c, row[1], wantRetry)
		}
		if !strings.HasPrefix(row[2], strconv.Itoa(wantStatus)) {
			t.Errorf("%s: docs say the webhook answers %q, the code %d", c, row[2], wantStatus)
		}
	}
	for c := range rows {
		t.Errorf("docs/ABI.md's error table has %s, which plugin/abi does not", c)
	}
}

// TestChangesAssignee: a delivery is ordered on its issue's assignee
// without staging assignments only when its changelog changes the
// assignee; a status-only one is not (it would make an older assignee
// change stale).
func TestChangesAssignee(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       bool
	}{
		{"assignee", `{"issue":{"id":"1"},"changelog":{"id":"2","items":[{"field":"assignee"}]}}`, true},
		{"assignee and status", `{"changelog":{"items":[{"field":"status"},{"field":"assignee"}]}}`, true},
		{"status only", `{"changelog":{"items":[{"field":"status"}]}}`, false},
		{"no changelog", `{"issue":{"id":"1"}}`, false},
		{"unreadable", `{"changelog":{"items":"assignee"}}`, false},
	} {
		if got := changesAssignee([]byte(tc.body)); got != tc.want {
			t.Errorf("%s: changesAssignee = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestStoredStaleFields: an answer from the record (a duplicate, a
// replay's waiter) names the fields a partly stale delivery did not
// apply, as the first answer does, and keeps the plugin's summary.
func TestStoredStaleFields(t *testing.T) {
	for _, tc := range []struct {
		summary string
		want    []string
	}{
		{`{"outcome":"synced","assigned":1,"groups":[],"stale_fields":["status"]}`, []string{"status"}},
		{`{"outcome":"synced","assigned":1,"groups":[]}`, nil},
	} {
		r := Stored(store.Delivery{Kind: store.KindWebhook, Status: store.DeliveryDone, Summary: tc.summary})
		if r.Summary == nil || r.Summary.Outcome != abi.OutcomeSynced || r.Summary.Assigned != 1 || !slices.Equal(r.StaleFields, tc.want) {
			t.Errorf("Stored(%s) = %+v, stale %v; want the summary, stale %v", tc.summary, r.Summary, r.StaleFields, tc.want)
		}
	}
}
