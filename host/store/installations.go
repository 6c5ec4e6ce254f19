package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
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
// per-organization settings.
type InstallationOrg struct {
	ID              string
	InboundAssignee bool
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
		for _, o := range in.Organizations {
			if _, err := tx.ExecContext(ctx, `INSERT INTO installation_organizations(installation_id, organization_id, inbound_assignee)
				VALUES (?, ?, ?)`, in.ID, o.ID, boolInt(o.InboundAssignee)); err != nil {
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
	rows, err := s.db.QueryContext(ctx, `SELECT organization_id, inbound_assignee FROM installation_organizations
		WHERE installation_id = ? ORDER BY organization_id`, in.ID)
	if err != nil {
		return in, err
	}
	defer rows.Close()
	for rows.Next() {
		var o InstallationOrg
		if err := rows.Scan(&o.ID, &o.InboundAssignee); err != nil {
			return in, err
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
	_, err := s.db.ExecContext(ctx, `INSERT INTO pending_setups(request_token, request_token_secret, base_url,
		consumer_key, private_key_pem, verify_tls, organization_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		p.RequestToken, p.RequestTokenSecret, p.BaseURL, p.ConsumerKey, p.PrivateKeyPEM, boolInt(p.VerifyTLS),
		p.Organization, s.now().UnixMilli())
	return err
}

// TakePendingSetup removes and returns the pending setup of a request
// token: a token is used once, whatever happens next.
func (s *Store) TakePendingSetup(ctx context.Context, requestToken string) (PendingSetup, error) {
	p := PendingSetup{RequestToken: requestToken}
	err := s.db.QueryRowContext(ctx, `DELETE FROM pending_setups WHERE request_token = ?
		RETURNING request_token_secret, base_url, consumer_key, private_key_pem, verify_tls, organization_id, created_at`,
		requestToken).Scan(&p.RequestTokenSecret, &p.BaseURL, &p.ConsumerKey, &p.PrivateKeyPEM, &p.VerifyTLS,
		&p.Organization, &p.CreatedAt)
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
	_, err := s.db.ExecContext(ctx, `DELETE FROM pending_setups WHERE created_at < ?`, t.UnixMilli())
	return err
}

// ServedOrganizations lists the organizations an installation serves, by
// id: its reach on a platform reached over HTTP, which the installation
// configuration is not kept on.
func (s *Store) ServedOrganizations(ctx context.Context, installationID string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT organization_id FROM installation_organizations
		WHERE installation_id = ? ORDER BY organization_id`, installationID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
