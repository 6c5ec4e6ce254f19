package app

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/jirasync/jirasync/host/platform"
	"github.com/jirasync/jirasync/host/store"
)

// The built-in platform's management API (docs/API.md): JSON under
// /api/v1, for the operator's scripts, guarded by the admin token as a
// bearer token only. Cookies are not accepted here: the API has no CSRF
// tokens, and a script has no session.

// APIPrefix is where the management API lives; the version is part of
// the path, so that an incompatible change gets a new one.
const APIPrefix = "/api/v1"

// MaxAPIBodyBytes bounds one API request's body.
const MaxAPIBodyBytes = 1 << 20

// apiError is the body of every API error: what is wrong, and in which
// field of the request ("" for the request as a whole).
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

// listPage is the body of a list: a page of items, and the "after" that
// gets the next page when there may be one.
type listPage[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next,omitempty"`
}

// resource is one kind of object of the API, over the built-in store.
type resource[T any] struct {
	kind   string // "organization", …; the path is its plural
	get    func(context.Context, string) (T, error)
	put    func(context.Context, T) error
	delete func(context.Context, string) error
	list   func(context.Context, store.Page, *http.Request) ([]T, error)
	id     func(*T) *string
}

func (a *App) platformRoutes() {
	st := a.store
	routes(a, resource[platform.Organization]{kind: "organization", get: st.Organization, put: st.PutOrganization,
		delete: st.DeleteOrganization, id: func(o *platform.Organization) *string { return &o.ID },
		list: func(ctx context.Context, p store.Page, _ *http.Request) ([]platform.Organization, error) {
			return st.ListOrganizations(ctx, p)
		}})
	routes(a, resource[platform.Project]{kind: "project", get: st.Project, put: st.PutProject,
		delete: st.DeleteProject, id: func(p *platform.Project) *string { return &p.ID },
		list: func(ctx context.Context, p store.Page, _ *http.Request) ([]platform.Project, error) {
			return st.ListProjects(ctx, p)
		}})
	routes(a, resource[platform.User]{kind: "user", get: st.User, put: st.PutUser,
		delete: st.DeleteUser, id: func(u *platform.User) *string { return &u.ID },
		list: func(ctx context.Context, p store.Page, _ *http.Request) ([]platform.User, error) {
			return st.ListUsers(ctx, p)
		}})
	groupOnly := func(ctx context.Context, id string) (platform.Group, error) {
		g, err := st.Group(ctx, "", id)
		return g.Group, err
	}
	// A group's PUT raises the platform event of its change (events.go).
	routes(a, resource[platform.Group]{kind: "group", get: groupOnly, put: a.putGroup,
		delete: st.DeleteGroup, id: func(g *platform.Group) *string { return &g.ID },
		list: func(ctx context.Context, p store.Page, r *http.Request) ([]platform.Group, error) {
			return st.ListGroups(ctx, p, r.URL.Query().Get("issue_key"))
		}})
	links := APIPrefix + "/groups/{id}/links"
	a.mux.HandleFunc("GET "+links, a.api(a.listLinks))
	a.mux.HandleFunc("PUT "+links+"/{installation}/{issue_key}", a.api(a.putLink))
	a.mux.HandleFunc("DELETE "+links+"/{installation}/{issue_key}", a.api(a.deleteLink))
}

func routes[T any](a *App, res resource[T]) {
	path := APIPrefix + "/" + res.kind + "s"
	a.mux.HandleFunc("GET "+path, a.api(func(w http.ResponseWriter, r *http.Request) {
		p, ok := pageOf(w, r)
		if !ok {
			return
		}
		items, err := res.list(r.Context(), p, r)
		if err != nil {
			a.apiStoreError(w, r, err)
			return
		}
		out := listPage[T]{Items: items}
		if out.Items == nil {
			out.Items = []T{}
		}
		if len(items) == p.Limit {
			out.Next = *res.id(&items[len(items)-1])
		}
		writeJSON(w, http.StatusOK, out)
	}))
	a.mux.HandleFunc("GET "+path+"/{id}", a.api(func(w http.ResponseWriter, r *http.Request) {
		obj, err := res.get(r.Context(), r.PathValue("id"))
		if err != nil {
			a.apiStoreError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, obj)
	}))
	a.mux.HandleFunc("PUT "+path+"/{id}", a.api(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := platform.ValidID("id", id); err != nil {
			a.apiStoreError(w, r, err)
			return
		}
		var obj T
		if !readObject(w, r, &obj) {
			return
		}
		if p := res.id(&obj); *p != "" && *p != id {
			writeJSON(w, http.StatusBadRequest, apiError{Field: "id", Error: "id: differs from the id in the path; leave it out or give the same"})
			return
		} else {
			*p = id
		}
		if err := res.put(r.Context(), obj); err != nil {
			a.apiStoreError(w, r, err)
			return
		}
		a.log.Info("platform object written", "kind", res.kind, "id", id)
		stored, err := res.get(r.Context(), id)
		if err != nil {
			a.apiStoreError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, stored)
	}))
	a.mux.HandleFunc("DELETE "+path+"/{id}", a.api(func(w http.ResponseWriter, r *http.Request) {
		if err := res.delete(r.Context(), r.PathValue("id")); err != nil {
			a.apiStoreError(w, r, err)
			return
		}
		a.log.Info("platform object deleted", "kind", res.kind, "id", r.PathValue("id"))
		w.WriteHeader(http.StatusNoContent)
	}))
}

// api guards an API endpoint: the admin token as a bearer token.
func (a *App) api(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.throttled(w, r) {
			return
		}
		if kind, _ := a.authKind(r); kind != "bearer" {
			if kind == "" {
				// A wrong token counts towards the sign-in throttle; a
				// browser's session or Basic sign-in is right, only not
				// accepted here (the API has no CSRF check).
				a.credentialsRefused(r)
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="jirasync"`)
			writeJSON(w, http.StatusUnauthorized, apiError{Error: "admin token required: Authorization: Bearer <token>"})
			return
		}
		h(w, r)
	}
}

// pageOf reads ?limit= and ?after=.
func pageOf(w http.ResponseWriter, r *http.Request) (store.Page, bool) {
	q := r.URL.Query()
	p := store.Page{After: q.Get("after"), Limit: store.DefaultPageLimit}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > store.MaxPageLimit {
			writeJSON(w, http.StatusBadRequest, apiError{Field: "limit",
				Error: "limit: want a whole number from 1 to " + strconv.Itoa(store.MaxPageLimit)})
			return p, false
		}
		p.Limit = n
	}
	if p.After != "" {
		if err := platform.ValidID("after", p.After); err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Field: "after", Error: err.Error()})
			return p, false
		}
	}
	return p, true
}

// readAPIBody reads a request body of at most MaxAPIBodyBytes, answering
// the error itself.
func readAPIBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAPIBodyBytes))
	if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
		writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: "body over " + strconv.Itoa(MaxAPIBodyBytes) + " bytes"})
		return nil, false
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "reading body: " + err.Error()})
		return nil, false
	}
	return body, true
}

// readObject reads a request body into v strictly (platform.DecodeObject),
// answering the error itself.
func readObject(w http.ResponseWriter, r *http.Request, v any) bool {
	body, ok := readAPIBody(w, r)
	if !ok {
		return false
	}
	if err := platform.DecodeObject(body, v); err != nil {
		var fe *platform.FieldError
		errors.As(err, &fe) // DecodeObject's errors are all FieldErrors
		writeJSON(w, http.StatusBadRequest, apiError{Field: fe.Field, Error: fe.Error()})
		return false
	}
	return true
}

// apiStoreError answers a failed read or write: bad input 400 naming
// the field, unknown 404, refused 409, anything else 503.
func (a *App) apiStoreError(w http.ResponseWriter, r *http.Request, err error) {
	var fe *platform.FieldError
	switch {
	case errors.As(err, &fe):
		writeJSON(w, http.StatusBadRequest, apiError{Field: fe.Field, Error: fe.Error()})
	case errors.Is(err, platform.ErrNotFound):
		writeJSON(w, http.StatusNotFound, apiError{Error: err.Error()})
	case errors.Is(err, platform.ErrConflict):
		writeJSON(w, http.StatusConflict, apiError{Error: err.Error()})
	default:
		a.log.Error("platform API: storage failed", "method", r.Method, "path", r.URL.Path, "error", err)
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: "storage unavailable"})
	}
}

func (a *App) listLinks(w http.ResponseWriter, r *http.Request) {
	group := r.PathValue("id")
	if _, err := a.store.Group(r.Context(), "", group); err != nil {
		a.apiStoreError(w, r, err)
		return
	}
	p, ok := pageOf(w, r)
	if !ok {
		return
	}
	// The cursor is the last link's "installation/issue_key": an issue
	// key has no slash, so the last one separates them.
	var after platform.Link
	if i := strings.LastIndexByte(p.After, '/'); i >= 0 {
		after.Installation, after.IssueKey = p.After[:i], p.After[i+1:]
	}
	links, err := a.store.ListLinks(r.Context(), group, after, p.Limit)
	if err != nil {
		a.apiStoreError(w, r, err)
		return
	}
	out := listPage[platform.Link]{Items: links}
	if out.Items == nil {
		out.Items = []platform.Link{}
	}
	if len(links) == p.Limit {
		last := links[len(links)-1]
		out.Next = last.Installation + "/" + last.IssueKey
	}
	writeJSON(w, http.StatusOK, out)
}

// linkOf reads a link from the path, after checking its group exists
// (404 otherwise).
func (a *App) linkOf(w http.ResponseWriter, r *http.Request) (platform.Link, bool) {
	l := platform.Link{Group: r.PathValue("id"), Installation: r.PathValue("installation"), IssueKey: r.PathValue("issue_key")}
	if err := l.Validate(); err != nil {
		a.apiStoreError(w, r, err)
		return l, false
	}
	if _, err := a.store.Group(r.Context(), "", l.Group); err != nil {
		a.apiStoreError(w, r, err)
		return l, false
	}
	return l, true
}

func (a *App) putLink(w http.ResponseWriter, r *http.Request) {
	l, ok := a.linkOf(w, r)
	if !ok {
		return
	}
	// The link is all in the path; a body, if any, must be empty.
	var empty struct{}
	if r.ContentLength != 0 && !readObject(w, r, &empty) {
		return
	}
	if err := a.store.LinkGroup(r.Context(), l.Group, l.Installation, l.IssueKey); err != nil {
		a.apiStoreError(w, r, err)
		return
	}
	a.log.Info("platform link written", "group", l.Group, "installation", l.Installation, "issue_key", l.IssueKey)
	writeJSON(w, http.StatusOK, l)
}

func (a *App) deleteLink(w http.ResponseWriter, r *http.Request) {
	l, ok := a.linkOf(w, r)
	if !ok {
		return
	}
	if err := a.store.Unlink(r.Context(), l); err != nil {
		a.apiStoreError(w, r, err)
		return
	}
	a.log.Info("platform link deleted", "group", l.Group, "installation", l.Installation, "issue_key", l.IssueKey)
	w.WriteHeader(http.StatusNoContent)
}
