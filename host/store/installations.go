package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO installations(id, external_id, base_url, consumer_key,
				private_key_pem, access_token, access_token_secret, webhook_secret, verify_tls, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET external_id = excluded.external_id, base_url = excluded.base_url,
				consumer_key = excluded.consumer_key, private_key_pem = excluded.private_key_pem,
				access_token = excluded.access_token, access_token_secret = excluded.access_token_secret,
				webhook_secret = excluded.webhook_secret, verify_tls = excluded.verify_tls`,
			in.ID, in.ExternalID, in.BaseURL, in.ConsumerKey, in.PrivateKeyPEM, in.AccessToken,
			in.AccessTokenSecret, in.WebhookSecret, boolInt(in.VerifyTLS), s.now().UnixMilli())
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
			access_token, access_token_secret, webhook_secret, verify_tls
		FROM installations WHERE `+column+` = ?`, value).
		Scan(&in.ID, &in.ExternalID, &in.BaseURL, &in.ConsumerKey, &in.PrivateKeyPEM,
			&in.AccessToken, &in.AccessTokenSecret, &in.WebhookSecret, &in.VerifyTLS)
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
