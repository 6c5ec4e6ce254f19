package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// stateScope is where a plugin's key lives: one installation's state
// (plugin_state) or the host-wide state every installation shares
// (plugin_shared_state). Both behave alike; only the key differs.
type stateScope struct {
	table string
	cols  []string // the columns of the key
	args  []any    // their values
}

func installationState(installationID, key string) stateScope {
	return stateScope{table: "plugin_state", cols: []string{"installation_id", "key"}, args: []any{installationID, key}}
}

func sharedState(key string) stateScope {
	return stateScope{table: "plugin_shared_state", cols: []string{"key"}, args: []any{key}}
}

// where is the scope's key as a condition.
func (sc stateScope) where() string {
	return strings.Join(sc.cols, " = ? AND ") + " = ?"
}

func (s *Store) stateGet(ctx context.Context, sc stateScope) (string, bool, error) {
	var value string
	var expires int64
	err := s.db.QueryRowContext(ctx, `SELECT value, expires_at FROM `+sc.table+` WHERE `+sc.where(), sc.args...).
		Scan(&value, &expires)
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

func (s *Store) statePut(ctx context.Context, sc stateScope, value string, ttl time.Duration) error {
	var expires int64
	if ttl > 0 {
		expires = s.now().Add(ttl).UnixMilli()
	}
	cols := strings.Join(sc.cols, ", ")
	_, err := s.exec(ctx, `INSERT INTO `+sc.table+`(`+cols+`, value, expires_at)
		VALUES (`+placeholders(len(sc.cols)+2)+`) ON CONFLICT(`+cols+`) DO UPDATE SET value = excluded.value,
		expires_at = excluded.expires_at`, append(sc.args, value, expires)...)
	return err
}

func (s *Store) stateDelete(ctx context.Context, sc stateScope) error {
	_, err := s.exec(ctx, `DELETE FROM `+sc.table+` WHERE `+sc.where(), sc.args...)
	return err
}

// StateGet reads a key of an installation's plugin state. An expired key
// reads as missing.
func (s *Store) StateGet(ctx context.Context, installationID, key string) (string, bool, error) {
	return s.stateGet(ctx, installationState(installationID, key))
}

// StatePut writes a key; ttl 0 keeps it until overwritten or deleted.
func (s *Store) StatePut(ctx context.Context, installationID, key, value string, ttl time.Duration) error {
	return s.statePut(ctx, installationState(installationID, key), value, ttl)
}

// StateDelete removes a key.
func (s *Store) StateDelete(ctx context.Context, installationID, key string) error {
	return s.stateDelete(ctx, installationState(installationID, key))
}

// SharedStateGet reads a key of the plugin's host-wide state, which every
// installation reads and writes alike (with PostgreSQL, every host
// sharing the database). An expired key reads as missing.
func (s *Store) SharedStateGet(ctx context.Context, key string) (string, bool, error) {
	return s.stateGet(ctx, sharedState(key))
}

// SharedStatePut writes a host-wide key; ttl 0 keeps it until
// overwritten or deleted.
func (s *Store) SharedStatePut(ctx context.Context, key, value string, ttl time.Duration) error {
	return s.statePut(ctx, sharedState(key), value, ttl)
}

// SharedStateDelete removes a host-wide key.
func (s *Store) SharedStateDelete(ctx context.Context, key string) error {
	return s.stateDelete(ctx, sharedState(key))
}
