package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jirasync/jirasync/host/platform"
)

// Installation is a connected Jira Server. The credential fields are
// secrets: they stay in the host and never reach the plugin.
type Installation struct {
	ID                string
	ExternalID        string // "<jira host[:port]>:<consumer key>"
	BaseURL           string
	ConsumerKey       string
	PrivateKeyPEM     string
	AccessToken       string
	AccessTokenSecret string
	WebhookSecret     string
	VerifyTLS         bool
	Organizations     []InstallationOrg
	// What the install flow learnt and registered on Jira.
	JiraVersion string
	WebhookAPI  string // "webhooks-1.0" (Jira before 10) or "jira-webhook-1.0"
	WebhookID   string
	// UninstalledAt is set when the operator uninstalled it: credentials
	// are gone, deliveries are refused, links are kept for a reinstall.
	UninstalledAt int64
}

// InstallationOrg is an organization an installation serves, with its
// per-organization settings: which directions of the sync are on. Only
// the inbound ones (Jira to the platform) are acted on; the outbound ones
// (the platform to Jira) are kept for when they are.
type InstallationOrg struct {
	ID               string
	InboundAssignee  bool
	OutboundAssignee bool
	InboundStatus    bool
	OutboundStatus   bool
	// StatusMappings say, per Jira project, which Jira status an issue is
	// moved to when its groups are resolved or unresolved on the
	// platform (outbound status).
	StatusMappings []StatusMapping
}

// StatusMapping is the Jira status to reach in one Jira project when a
// group is resolved, and when it is unresolved.
type StatusMapping struct {
	JiraProject     string `json:"jira_project"`
	ResolveStatus   string `json:"resolve_status"`
	UnresolveStatus string `json:"unresolve_status"`
}

// Bounds of the settings.
const (
	MaxStatusMappings   = 1000
	MaxJiraProjectBytes = 255
	MaxStatusNameBytes  = 255
)

var jiraProjectRE = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)

// Validate checks an organization's settings. A status mapping may be
// incomplete while outbound status sync is off (kept for later); with it
// on, there must be at least one, each with both statuses, since a group
// resolved or unresolved must have a status to reach.
func (o InstallationOrg) Validate() error {
	if err := platform.ValidID("organization", o.ID); err != nil {
		return err
	}
	if len(o.StatusMappings) > MaxStatusMappings {
		return &platform.FieldError{Field: "status_mappings",
			Msg: fmt.Sprintf("%d mappings, over the limit of %d", len(o.StatusMappings), MaxStatusMappings)}
	}
	if o.OutboundStatus && len(o.StatusMappings) == 0 {
		return &platform.FieldError{Field: "status_mappings",
			Msg: "outbound status sync needs, for at least one Jira project, the status to reach on resolve and on unresolve"}
	}
	seen := map[string]int{}
	for i, m := range o.StatusMappings {
		at := fmt.Sprintf("status_mappings[%d]", i)
		if len(m.JiraProject) > MaxJiraProjectBytes || !jiraProjectRE.MatchString(m.JiraProject) {
			return &platform.FieldError{Field: at + ".jira_project", Msg: fmt.Sprintf("%q is not a Jira project key (like APP)", m.JiraProject)}
		}
		if j, dup := seen[m.JiraProject]; dup {
			return &platform.FieldError{Field: at + ".jira_project", Msg: fmt.Sprintf("the same project as status_mappings[%d]", j)}
		}
		seen[m.JiraProject] = i
		for _, f := range []struct{ name, v string }{{"resolve_status", m.ResolveStatus}, {"unresolve_status", m.UnresolveStatus}} {
			field := at + "." + f.name
			switch {
			case f.v == "" && o.OutboundStatus:
				return &platform.FieldError{Field: field, Msg: "required while outbound status sync is on"}
			case len(f.v) > MaxStatusNameBytes:
				return &platform.FieldError{Field: field, Msg: fmt.Sprintf("%d bytes, over the limit of %d", len(f.v), MaxStatusNameBytes)}
			case !utf8.ValidString(f.v) || strings.TrimSpace(f.v) != f.v || strings.IndexFunc(f.v, unicode.IsControl) >= 0:
				return &platform.FieldError{Field: field, Msg: "not a status name: want UTF-8 without control characters or surrounding space"}
			}
		}
	}
	return nil
}

// secretFields are the installation's sealed columns, by name.
func (in *Installation) secretFields() map[string]*string {
	return map[string]*string{"private_key_pem": &in.PrivateKeyPEM, "access_token": &in.AccessToken,
		"access_token_secret": &in.AccessTokenSecret, "webhook_secret": &in.WebhookSecret}
}

// PutInstallation creates or updates an installation and replaces the set
// of organizations it serves. Its credentials are sealed before writing.
func (s *Store) PutInstallation(ctx context.Context, in Installation) error {
	for col, v := range in.secretFields() {
		sealed, err := s.secrets.Seal(*v, "installation:"+in.ID+":"+col)
		if err != nil {
			return fmt.Errorf("sealing %s: %w", col, err)
		}
		*v = sealed
	}
	mappings := make([]string, len(in.Organizations))
	for i, o := range in.Organizations {
		if err := o.Validate(); err != nil {
			return platform.In(fmt.Sprintf("organizations[%d]", i), err)
		}
		if o.StatusMappings == nil {
			o.StatusMappings = []StatusMapping{}
		}
		b, err := json.Marshal(o.StatusMappings)
		if err != nil {
			return err
		}
		mappings[i] = string(b)
	}
	return s.tx(ctx, func(tx runner) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO installations(id, external_id, base_url, consumer_key,
				private_key_pem, access_token, access_token_secret, webhook_secret, verify_tls, created_at,
				jira_version, webhook_api, webhook_id, uninstalled_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET external_id = excluded.external_id, base_url = excluded.base_url,
				consumer_key = excluded.consumer_key, private_key_pem = excluded.private_key_pem,
				access_token = excluded.access_token, access_token_secret = excluded.access_token_secret,
				webhook_secret = excluded.webhook_secret, verify_tls = excluded.verify_tls,
				jira_version = excluded.jira_version, webhook_api = excluded.webhook_api,
				webhook_id = excluded.webhook_id, uninstalled_at = excluded.uninstalled_at`,
			in.ID, in.ExternalID, in.BaseURL, in.ConsumerKey, in.PrivateKeyPEM, in.AccessToken,
			in.AccessTokenSecret, in.WebhookSecret, boolInt(in.VerifyTLS), s.now().UnixMilli(),
			in.JiraVersion, in.WebhookAPI, in.WebhookID, in.UninstalledAt)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM installation_organizations WHERE installation_id = ?`, in.ID); err != nil {
			return err
		}
		for i, o := range in.Organizations {
			if _, err := tx.ExecContext(ctx, `INSERT INTO installation_organizations(installation_id, organization_id,
					inbound_assignee, outbound_assignee, inbound_status, outbound_status, status_mappings)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, in.ID, o.ID, boolInt(o.InboundAssignee), boolInt(o.OutboundAssignee),
				boolInt(o.InboundStatus), boolInt(o.OutboundStatus), mappings[i]); err != nil {
				return fmt.Errorf("installation %s, organization %s: %w", in.ID, o.ID, err)
			}
		}
		return nil
	})
}

// Installation reads an installation by id.
func (s *Store) Installation(ctx context.Context, id string) (Installation, error) {
	return s.installationWhere(ctx, "id", id)
}

// InstallationByExternalID reads an installation by external id, the
// identity carried in webhook tokens.
func (s *Store) InstallationByExternalID(ctx context.Context, externalID string) (Installation, error) {
	return s.installationWhere(ctx, "external_id", externalID)
}

func (s *Store) installationWhere(ctx context.Context, column, value string) (Installation, error) {
	var in Installation
	err := s.db.QueryRowContext(ctx, `SELECT id, external_id, base_url, consumer_key, private_key_pem,
			access_token, access_token_secret, webhook_secret, verify_tls, jira_version, webhook_api, webhook_id,
			uninstalled_at
		FROM installations WHERE `+column+` = ?`, value).
		Scan(&in.ID, &in.ExternalID, &in.BaseURL, &in.ConsumerKey, &in.PrivateKeyPEM,
			&in.AccessToken, &in.AccessTokenSecret, &in.WebhookSecret, &in.VerifyTLS, &in.JiraVersion,
			&in.WebhookAPI, &in.WebhookID, &in.UninstalledAt)
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("installation %s %q: %w", column, value, ErrNotFound)
	}
	if err != nil {
		return in, err
	}
	for col, v := range in.secretFields() {
		plain, err := s.secrets.Open(*v, "installation:"+in.ID+":"+col)
		if err != nil {
			return in, fmt.Errorf("installation %s %s: %w", in.ID, col, err)
		}
		*v = plain
	}
	rows, err := s.db.QueryContext(ctx, `SELECT organization_id, inbound_assignee, outbound_assignee, inbound_status,
			outbound_status, status_mappings
		FROM installation_organizations WHERE installation_id = ? ORDER BY organization_id`, in.ID)
	if err != nil {
		return in, err
	}
	defer rows.Close()
	for rows.Next() {
		var o InstallationOrg
		var mappings string
		if err := rows.Scan(&o.ID, &o.InboundAssignee, &o.OutboundAssignee, &o.InboundStatus, &o.OutboundStatus, &mappings); err != nil {
			return in, err
		}
		if err := json.Unmarshal([]byte(mappings), &o.StatusMappings); err != nil {
			return in, fmt.Errorf("installation %s, organization %s: status_mappings: %w", in.ID, o.ID, err)
		}
		if len(o.StatusMappings) == 0 {
			o.StatusMappings = nil // as written: none is nil
		}
		in.Organizations = append(in.Organizations, o)
	}
	return in, rows.Err()
}

// Installations lists every installation, by id, without credentials.
func (s *Store) Installations(ctx context.Context) ([]Installation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM installations ORDER BY id`)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]Installation, 0, len(ids))
	for _, id := range ids {
		in, err := s.Installation(ctx, id)
		if err != nil {
			return nil, err
		}
		in.PrivateKeyPEM, in.AccessToken, in.AccessTokenSecret, in.WebhookSecret = "", "", "", ""
		out = append(out, in)
	}
	return out, nil
}

// PendingSetup is an install waiting for the operator to approve it on
// Jira: the request token and what the setup form said.
type PendingSetup struct {
	RequestToken       string
	RequestTokenSecret string
	BaseURL            string
	ConsumerKey        string
	PrivateKeyPEM      string
	VerifyTLS          bool
	Organization       string
	CreatedAt          int64
}

func (p *PendingSetup) secretFields() map[string]*string {
	return map[string]*string{"request_token_secret": &p.RequestTokenSecret, "private_key_pem": &p.PrivateKeyPEM}
}

// PutPendingSetup stores a pending setup, its secrets sealed.
func (s *Store) PutPendingSetup(ctx context.Context, p PendingSetup) error {
	for col, v := range p.secretFields() {
		sealed, err := s.secrets.Seal(*v, "setup:"+p.RequestToken+":"+col)
		if err != nil {
			return err
		}
		*v = sealed
	}
	_, err := s.exec(ctx, `INSERT INTO pending_setups(request_token, request_token_secret, base_url,
		consumer_key, private_key_pem, verify_tls, organization_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		p.RequestToken, p.RequestTokenSecret, p.BaseURL, p.ConsumerKey, p.PrivateKeyPEM, boolInt(p.VerifyTLS),
		p.Organization, s.now().UnixMilli())
	return err
}

// TakePendingSetup removes and returns the pending setup of a request
// token: a token is used once, whatever happens next.
func (s *Store) TakePendingSetup(ctx context.Context, requestToken string) (PendingSetup, error) {
	p := PendingSetup{RequestToken: requestToken}
	err := s.writing(ctx, ordinary, func() error {
		return s.db.QueryRowContext(ctx, `DELETE FROM pending_setups WHERE request_token = ?
			RETURNING request_token_secret, base_url, consumer_key, private_key_pem, verify_tls, organization_id, created_at`,
			requestToken).Scan(&p.RequestTokenSecret, &p.BaseURL, &p.ConsumerKey, &p.PrivateKeyPEM, &p.VerifyTLS,
			&p.Organization, &p.CreatedAt)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("setup for request token: %w", ErrNotFound)
	}
	if err != nil {
		return p, err
	}
	for col, v := range p.secretFields() {
		plain, err := s.secrets.Open(*v, "setup:"+p.RequestToken+":"+col)
		if err != nil {
			return p, err
		}
		*v = plain
	}
	return p, nil
}

// DeletePendingSetupsBefore forgets setups started before t.
func (s *Store) DeletePendingSetupsBefore(ctx context.Context, t time.Time) error {
	_, err := s.exec(ctx, `DELETE FROM pending_setups WHERE created_at < ?`, t.UnixMilli())
	return err
}

// ServedOrganizations lists the organizations an installation serves, by
// id: its reach on a platform reached over HTTP, which the installation
// configuration is not kept on.
func (s *Store) ServedOrganizations(ctx context.Context, installationID string) ([]string, error) {
	return queryStrings(ctx, s.db, `SELECT organization_id FROM installation_organizations
		WHERE installation_id = ? ORDER BY organization_id`, installationID)
}

// queryStrings runs a query of one text column and returns its values.
func queryStrings(ctx context.Context, q runner, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
