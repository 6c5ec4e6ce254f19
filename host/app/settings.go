package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"slices"
	"strings"

	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
)

// An installation's per-organization settings (issue 12, two-way sync):
// changed on the installation page and over the management API
// (docs/API.md). Both go through setOrgSettings, which checks, stores and
// logs each change.

// orgSettings is store.InstallationOrg as the API spells it: the same
// fields, so that the two convert into each other.
type orgSettings struct {
	ID               string                `json:"organization"`
	InboundAssignee  bool                  `json:"inbound_assignee"`
	OutboundAssignee bool                  `json:"outbound_assignee"`
	InboundStatus    bool                  `json:"inbound_status"`
	OutboundStatus   bool                  `json:"outbound_status"`
	StatusMappings   []store.StatusMapping `json:"status_mappings"`
}

// answer is the settings as the API answers them: no mapping is [].
func (s orgSettings) answer() orgSettings {
	if s.StatusMappings == nil {
		s.StatusMappings = []store.StatusMapping{}
	}
	return s
}

func (a *App) settingsRoutes() {
	path := APIPrefix + "/installations/{id}/organizations"
	a.mux.HandleFunc("GET "+path, a.api(a.listOrgSettings))
	a.mux.HandleFunc("GET "+path+"/{organization}", a.api(a.getOrgSettings))
	a.mux.HandleFunc("PUT "+path+"/{organization}", a.api(a.putOrgSettings))
}

// apiInstallation reads the installation of the path, answering 404 or
// 503 itself.
func (a *App) apiInstallation(w http.ResponseWriter, r *http.Request) (store.Installation, bool) {
	in, err := a.store.Installation(r.Context(), r.PathValue("id"))
	if err != nil {
		a.apiStoreError(w, r, err)
		return in, false
	}
	return in, true
}

func (a *App) listOrgSettings(w http.ResponseWriter, r *http.Request) {
	in, ok := a.apiInstallation(w, r)
	if !ok {
		return
	}
	out := listPage[orgSettings]{Items: []orgSettings{}}
	for _, o := range in.Organizations {
		out.Items = append(out.Items, orgSettings(o).answer())
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *App) getOrgSettings(w http.ResponseWriter, r *http.Request) {
	in, ok := a.apiInstallation(w, r)
	if !ok {
		return
	}
	org := r.PathValue("organization")
	for _, o := range in.Organizations {
		if o.ID == org {
			writeJSON(w, http.StatusOK, orgSettings(o).answer())
			return
		}
	}
	writeJSON(w, http.StatusNotFound, apiError{Error: fmt.Sprintf("installation %s does not serve organization %q", in.ID, org)})
}

// putOrgSettings replaces one organization's settings; an organization
// the installation does not serve yet is added (as on the page). A key
// left out is off, except inbound_assignee, on unless said otherwise (as
// an organization added on the setup page).
func (a *App) putOrgSettings(w http.ResponseWriter, r *http.Request) {
	in, ok := a.apiInstallation(w, r)
	if !ok {
		return
	}
	org := r.PathValue("organization")
	s := orgSettings{InboundAssignee: true}
	if !readObject(w, r, &s) {
		return
	}
	if s.ID != "" && s.ID != org {
		writeJSON(w, http.StatusBadRequest, apiError{Field: "organization",
			Error: "organization: differs from the organization in the path; leave it out or give the same"})
		return
	}
	s.ID = org
	if err := a.setOrgSettings(r.Context(), in, store.InstallationOrg(s)); err != nil {
		a.apiStoreError(w, r, err)
		return
	}
	a.getOrgSettings(w, r)
}

// setOrgSettings replaces the settings of o.ID on in, adding it to the
// organizations served if need be (it must be one of the platform's), and
// logs what changed. Bad settings are a *platform.FieldError.
func (a *App) setOrgSettings(ctx context.Context, in store.Installation, o store.InstallationOrg) error {
	if err := o.Validate(); err != nil {
		return err
	}
	i := slices.IndexFunc(in.Organizations, func(x store.InstallationOrg) bool { return x.ID == o.ID })
	var before store.InstallationOrg
	if i < 0 {
		orgs, err := a.platform.Organizations(ctx)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(orgs, func(x platform.Organization) bool { return x.ID == o.ID }) {
			return &platform.FieldError{Field: "organization", Msg: fmt.Sprintf("unknown organization %q", o.ID)}
		}
		in.Organizations = append(in.Organizations, o)
	} else {
		before = in.Organizations[i]
		in.Organizations[i] = o
	}
	if err := a.PutInstallation(ctx, in); err != nil {
		return err
	}
	attrs := []any{"installation", in.ID, "organization", o.ID, "added", i < 0}
	attrs = append(attrs, settingsChanges(before, o)...)
	a.log.Info("installation organization settings changed", attrs...)
	return nil
}

// settingsChanges lists the settings that differ, as slog attributes
// "<setting>" = "<before> -> <after>".
func settingsChanges(before, after store.InstallationOrg) []any {
	b, f := reflect.ValueOf(orgSettings(before)), reflect.ValueOf(orgSettings(after))
	var out []any
	for i := 1; i < b.NumField(); i++ { // 0 is the organization
		if !reflect.DeepEqual(b.Field(i).Interface(), f.Field(i).Interface()) {
			name, _, _ := strings.Cut(b.Type().Field(i).Tag.Get("json"), ",")
			out = append(out, slog.String(name, fmt.Sprintf("%v -> %v", b.Field(i).Interface(), f.Field(i).Interface())))
		}
	}
	return out
}

// formMappings reads the installation page's status mappings: one line
// per Jira project, "PROJECT | resolve status | unresolve status".
func formMappings(text string) ([]store.StatusMapping, error) {
	var out []store.StatusMapping
	for n, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		parts := strings.Split(line, "|")
		if len(parts) != 3 {
			return nil, &platform.FieldError{Field: "status_mappings",
				Msg: fmt.Sprintf("line %d: want \"PROJECT | resolve status | unresolve status\", got %q", n+1, line)}
		}
		out = append(out, store.StatusMapping{JiraProject: strings.TrimSpace(parts[0]),
			ResolveStatus: strings.TrimSpace(parts[1]), UnresolveStatus: strings.TrimSpace(parts[2])})
	}
	return out, nil
}

// formatMappings writes status mappings as the installation page reads
// them.
func formatMappings(ms []store.StatusMapping) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s | %s | %s\n", m.JiraProject, m.ResolveStatus, m.UnresolveStatus)
	}
	return b.String()
}

// setInstallationOrg is the installation page's form: with "settings",
// every setting of an organization; otherwise (the add form, and forms
// of before the settings) an organization served, with inbound assignee
// sync on or off and its other settings unchanged.
func (a *App) setInstallationOrg(w http.ResponseWriter, r *http.Request) {
	in, ok := a.installationOrAnswer(w, r)
	if !ok {
		return
	}
	o := store.InstallationOrg{ID: r.PostFormValue("organization"), InboundAssignee: r.PostFormValue("inbound_assignee") != ""}
	if r.PostFormValue("settings") != "" {
		o.OutboundAssignee = r.PostFormValue("outbound_assignee") != ""
		o.InboundStatus = r.PostFormValue("inbound_status") != ""
		o.OutboundStatus = r.PostFormValue("outbound_status") != ""
		ms, err := formMappings(r.PostFormValue("status_mappings"))
		if err != nil {
			a.message(w, http.StatusBadRequest, "Settings not saved", err.Error())
			return
		}
		o.StatusMappings = ms
	} else if i := slices.IndexFunc(in.Organizations, func(x store.InstallationOrg) bool { return x.ID == o.ID }); i >= 0 {
		inbound := o.InboundAssignee
		o = in.Organizations[i]
		o.InboundAssignee = inbound
	}
	err := a.setOrgSettings(r.Context(), in, o)
	var fe *platform.FieldError
	switch {
	case errors.As(err, &fe):
		a.message(w, http.StatusBadRequest, "Settings not saved", fe.Error())
		return
	case err != nil:
		a.storeDown(w, err)
		return
	}
	http.Redirect(w, r, InstallationsPath+"/"+in.ID, http.StatusSeeOther)
}
