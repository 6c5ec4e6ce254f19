package store

// migrations are applied in order, each once, each in its own transaction.
// A released migration is never edited: a change is a new entry.
var migrations = []string{
	// 1: platform data, installations, deliveries, plugin state.
	`
CREATE TABLE organizations (
	id   TEXT PRIMARY KEY,
	name TEXT NOT NULL DEFAULT ''
);
CREATE TABLE projects (
	id              TEXT PRIMARY KEY,
	organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
	name            TEXT NOT NULL DEFAULT ''
);
-- seq keeps creation order: "the first user with that email" means the oldest.
CREATE TABLE users (
	seq  INTEGER PRIMARY KEY AUTOINCREMENT,
	id   TEXT NOT NULL UNIQUE,
	name TEXT NOT NULL DEFAULT ''
);
CREATE TABLE user_emails (
	user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	email       TEXT NOT NULL,
	email_lower TEXT NOT NULL,
	verified    INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (user_id, email_lower)
);
CREATE INDEX user_emails_by_email ON user_emails(email_lower);
CREATE TABLE project_members (
	project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	PRIMARY KEY (project_id, user_id)
);
CREATE TABLE issue_groups (
	id          TEXT PRIMARY KEY,
	project_id  TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
	title       TEXT NOT NULL DEFAULT '',
	assignee_id TEXT REFERENCES users(id) ON DELETE SET NULL,
	updated_at  INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE installations (
	id                  TEXT PRIMARY KEY,
	external_id         TEXT NOT NULL UNIQUE,
	base_url            TEXT NOT NULL,
	consumer_key        TEXT NOT NULL,
	private_key_pem     TEXT NOT NULL DEFAULT '',
	access_token        TEXT NOT NULL DEFAULT '',
	access_token_secret TEXT NOT NULL DEFAULT '',
	webhook_secret      TEXT NOT NULL,
	verify_tls          INTEGER NOT NULL DEFAULT 1,
	created_at          INTEGER NOT NULL
);
CREATE TABLE installation_organizations (
	installation_id  TEXT NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
	organization_id  TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
	inbound_assignee INTEGER NOT NULL DEFAULT 1,
	PRIMARY KEY (installation_id, organization_id)
);
CREATE TABLE group_links (
	group_id        TEXT NOT NULL REFERENCES issue_groups(id) ON DELETE CASCADE,
	installation_id TEXT NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
	issue_key       TEXT NOT NULL,
	PRIMARY KEY (group_id, installation_id, issue_key)
);
CREATE INDEX group_links_by_issue ON group_links(installation_id, issue_key);
-- Every assignee change, with the delivery that made it: the audit trail an
-- operator reads when a group's assignee surprises someone.
CREATE TABLE assignee_changes (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	group_id     TEXT NOT NULL,
	delivery_id  INTEGER,
	from_user_id TEXT,
	to_user_id   TEXT,
	changed_at   INTEGER NOT NULL
);
CREATE TABLE deliveries (
	id              INTEGER PRIMARY KEY AUTOINCREMENT,
	installation_id TEXT NOT NULL,
	received_at     INTEGER NOT NULL,
	body            BLOB NOT NULL,
	status          TEXT NOT NULL,
	http_status     INTEGER NOT NULL DEFAULT 0,
	issue_key       TEXT NOT NULL DEFAULT '',
	summary         TEXT NOT NULL DEFAULT '',
	error           TEXT NOT NULL DEFAULT '',
	finished_at     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX deliveries_by_status ON deliveries(status, id);
CREATE TABLE plugin_state (
	installation_id TEXT NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
	key             TEXT NOT NULL,
	value           TEXT NOT NULL,
	expires_at      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (installation_id, key)
);
`,
}
