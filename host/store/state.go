package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// StateGet reads a key of an installation's plugin state. An expired key
// reads as missing.
func (s *Store) StateGet(ctx context.Context, installationID, key string) (string, bool, error) {
	var value string
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT value, expires_at FROM plugin_state
		WHERE installation_id = ? AND key = ?`, installationID, key).Scan(&value, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	if expires != 0 && expires <= s.now().UnixMilli() {
		return "", false, nil
	}
	return value, true, nil
}

// StatePut writes a key; ttl 0 keeps it until overwritten or deleted.
func (s *Store) StatePut(ctx context.Context, installationID, key, value string, ttl time.Duration) error {
	var expires int64
	if ttl > 0 {
		expires = s.now().Add(ttl).UnixMilli()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO plugin_state(installation_id, key, value, expires_at)
		VALUES (?, ?, ?, ?) ON CONFLICT(installation_id, key) DO UPDATE SET value = excluded.value,
		expires_at = excluded.expires_at`, installationID, key, value, expires)
	return err
}

// StateDelete removes a key.
func (s *Store) StateDelete(ctx context.Context, installationID, key string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM plugin_state WHERE installation_id = ? AND key = ?`, installationID, key)
	return err
}
