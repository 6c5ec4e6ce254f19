package app

import (
	"net/http"

	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
)

// PlatformPath shows the built-in platform's data to operators, read
// only: changes go through the API or an import.
const PlatformPath = "/extensions/jira-server/platform"

type platformPage struct {
	Organizations []platform.Organization
	Groups        []groupRow
	IssueKey      string
	Next          string // "after" of the next page of groups
	Error         string
}

type groupRow struct {
	platform.Group
	Links []platform.Link
}

func (a *App) platformPages() {
	a.mux.HandleFunc("GET "+PlatformPath, a.admin(a.showPlatform))
}

func (a *App) showPlatform(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := platformPage{IssueKey: q.Get("issue_key")}
	page := store.Page{After: q.Get("after"), Limit: 50}
	if p.IssueKey != "" {
		if err := platform.ValidIssueKey("issue_key", p.IssueKey); err != nil {
			p.Error = err.Error()
			render(w, http.StatusBadRequest, "platform.html", p)
			return
		}
	}
	orgs, err := a.store.ListOrganizations(r.Context(), store.Page{Limit: store.MaxPageLimit})
	if err != nil {
		a.storeDown(w, err)
		return
	}
	groups, err := a.store.ListGroups(r.Context(), page, p.IssueKey)
	if err != nil {
		a.storeDown(w, err)
		return
	}
	ids := make([]string, len(groups))
	for i, g := range groups {
		ids[i] = g.ID
	}
	links, err := a.store.GroupLinks(r.Context(), ids)
	if err != nil {
		a.storeDown(w, err)
		return
	}
	p.Organizations = orgs
	for _, g := range groups {
		p.Groups = append(p.Groups, groupRow{Group: g, Links: links[g.ID]})
	}
	if len(groups) == page.Limit {
		p.Next = groups[len(groups)-1].ID
	}
	render(w, http.StatusOK, "platform.html", p)
}
