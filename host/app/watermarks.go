package app

import (
	"errors"
	"net/http"

	"github.com/jirasync/jirasync/host/store"
)

// WatermarksPath shows and resets issue watermarks; admin only.
const WatermarksPath = "/extensions/jira-server/watermarks"

// watermarkRoutes: an issue's watermark, one per field (assignee,
// status), is the newest Jira timestamp applied to that field, and a
// delivery's change of the field older than it is not applied. Operators
// look at them when an issue's deliveries keep coming out stale, and reset it when
// it is wrong (a sender's clock far ahead before MaxClockSkew existed, a
// forged timestamp). Resetting needs the CSRF token for a browser's form
// post, like every admin POST.
func (a *App) watermarkRoutes() {
	a.mux.HandleFunc("GET "+WatermarksPath, a.admin(a.listWatermarks))
	a.mux.HandleFunc("POST "+WatermarksPath+"/reset", a.admin(a.resetWatermarks))
}

type watermarkList struct {
	Watermarks []store.Watermark `json:"watermarks"`
}

// watermarkFilter reads installation, issue_id and issue_key from the
// query or, for a POST, the form.
func watermarkFilter(r *http.Request) store.WatermarkFilter {
	return store.WatermarkFilter{Installation: r.FormValue("installation"), IssueID: r.FormValue("issue_id"),
		IssueKey: r.FormValue("issue_key")}
}

func (a *App) listWatermarks(w http.ResponseWriter, r *http.Request) {
	f := watermarkFilter(r)
	var ok bool
	if f.Limit, ok = parseLimit(w, r); !ok {
		return
	}
	ms, err := a.store.Watermarks(r.Context(), f)
	if err != nil {
		a.log.Error("listing watermarks", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "storage unavailable"})
		return
	}
	writeJSON(w, http.StatusOK, watermarkList{Watermarks: ms})
}

// resetWatermarks removes the watermarks, every field's, of one issue (by
// id, or by key: every issue of the installation that had a delivery with
// that key), so that its next delivery applies whatever its timestamp.
func (a *App) resetWatermarks(w http.ResponseWriter, r *http.Request) {
	f := watermarkFilter(r)
	ms, err := a.store.ResetWatermarks(r.Context(), f)
	switch {
	case errors.Is(err, store.ErrNoFilter):
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "installation and issue_id or issue_key are required"})
		return
	case err != nil:
		a.log.Error("resetting watermarks", "error", err)
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "storage unavailable"})
		return
	case len(ms) == 0:
		writeJSON(w, http.StatusNotFound, errorBody{Error: "no watermark for that issue"})
		return
	}
	for _, m := range ms {
		a.log.Warn("issue watermark reset by an operator", "installation", m.Installation, "issue_id", m.IssueID,
			"field", m.Field, "issue_key", m.IssueKey, "jira_timestamp", m.JiraTimestamp, "set_by_delivery", m.Delivery, "remote", r.RemoteAddr)
	}
	writeJSON(w, http.StatusOK, map[string][]store.Watermark{"reset": ms})
}
