package store

// The schema's versions, for SQLite. Migrations are applied in order, each
// once, each in its own transaction. A released migration is never edited:
// a change is a new entry here and in postgres_migrations.go, with the same
// number and the same tables and columns (TestSchemasAgree checks).
var sqliteMigrations = []string{migration1, migration2, migration3, migration4, migration5, migration6, migration7, migration8, migration9}

// migration1: platform data, installations, deliveries, plugin state.
const migration1 = `
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
`

// migration2 makes the delivery log a durable inbox: what identifies a
// delivery (for duplicates and ordering), its retry schedule and lease, each
// attempt's outcome, and per-issue watermarks.
const migration2 = `
ALTER TABLE deliveries ADD COLUMN event TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN issue_id TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN changelog_id TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN jira_timestamp INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN dedupe_key TEXT NOT NULL DEFAULT '';
ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
-- attempts made before the last replay: they do not count against the
-- retry budget, and keep their numbers in delivery_attempts.
ALTER TABLE deliveries ADD COLUMN attempt_base INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN next_attempt_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX deliveries_dedupe ON deliveries(installation_id, dedupe_key) WHERE dedupe_key != '';
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_at);
CREATE INDEX deliveries_by_issue ON deliveries(installation_id, issue_key, id);
CREATE TABLE delivery_attempts (
	delivery_id INTEGER NOT NULL REFERENCES deliveries(id) ON DELETE CASCADE,
	attempt     INTEGER NOT NULL,
	started_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL,
	outcome     TEXT NOT NULL,
	error       TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (delivery_id, attempt)
);
-- The newest Jira timestamp applied per issue: an older delivery arriving
-- later must not overwrite a newer assignee.
CREATE TABLE issue_watermarks (
	installation_id TEXT NOT NULL,
	issue_id        TEXT NOT NULL,
	jira_timestamp  INTEGER NOT NULL,
	delivery_id     INTEGER NOT NULL,
	PRIMARY KEY (installation_id, issue_id)
);
`

// migration3 supports the install flow: OAuth setups waiting for the
// operator's approval on Jira, and what an installation registered there.
const migration3 = `
ALTER TABLE installations ADD COLUMN jira_version TEXT NOT NULL DEFAULT '';
ALTER TABLE installations ADD COLUMN webhook_api TEXT NOT NULL DEFAULT '';
ALTER TABLE installations ADD COLUMN webhook_id TEXT NOT NULL DEFAULT '';
ALTER TABLE installations ADD COLUMN uninstalled_at INTEGER NOT NULL DEFAULT 0;
CREATE TABLE pending_setups (
	request_token        TEXT PRIMARY KEY,
	request_token_secret TEXT NOT NULL,
	base_url             TEXT NOT NULL,
	consumer_key         TEXT NOT NULL,
	private_key_pem      TEXT NOT NULL,
	verify_tls           INTEGER NOT NULL,
	organization_id      TEXT NOT NULL,
	created_at           INTEGER NOT NULL
);
`

// migration4 indexes the unsettled deliveries in id order, for claiming
// the oldest due one: without it a claim scans every settled delivery
// ever stored. The statuses are spelt out, as ClaimNext spells them, so
// that the planner can tell the index covers the query.
const migration4 = `
CREATE INDEX deliveries_queue ON deliveries(id) WHERE status IN ('pending', 'retrying', 'processing');
`

// migration5 supports retention (retention.go): settled deliveries are
// found by status and age, ignored ones whose body may be dropped by a
// flag (cleared when it is), expired plugin state by expiry, and the audit
// trail by time.
const migration5 = `
ALTER TABLE deliveries ADD COLUMN body_droppable INTEGER NOT NULL DEFAULT 0;
CREATE INDEX deliveries_settled ON deliveries(status, finished_at);
CREATE INDEX deliveries_droppable_bodies ON deliveries(finished_at) WHERE body_droppable = 1;
CREATE INDEX plugin_state_expiry ON plugin_state(expires_at) WHERE expires_at > 0;
CREATE INDEX assignee_changes_by_time ON assignee_changes(changed_at);
`

// migration6 serves the built-in platform at scale (100,000 users, groups and
// links): users by email read memberships by user, deletes find a
// project's groups, an organization's projects and a user's groups
// without a scan; and platform_applies records the assignments applied
// under an idempotency key (Store.Apply), so that a repeated apply
// changes nothing; and an issue's hold while a delivery applies on an
// external platform (Store.Reserve).
const migration6 = `
CREATE INDEX project_members_by_user ON project_members(user_id);
CREATE INDEX projects_by_organization ON projects(organization_id);
CREATE INDEX issue_groups_by_project ON issue_groups(project_id);
CREATE INDEX issue_groups_by_assignee ON issue_groups(assignee_id);
CREATE TABLE platform_applies (
	installation_id TEXT NOT NULL,
	delivery_id     INTEGER NOT NULL,
	round           INTEGER NOT NULL,
	changed         INTEGER NOT NULL,
	applied_at      INTEGER NOT NULL,
	PRIMARY KEY (installation_id, delivery_id, round)
);
CREATE INDEX platform_applies_by_time ON platform_applies(applied_at);
ALTER TABLE issue_watermarks ADD COLUMN applying_delivery INTEGER NOT NULL DEFAULT 0;
ALTER TABLE issue_watermarks ADD COLUMN applying_until INTEGER NOT NULL DEFAULT 0;
`

// migration7 lets an installation serve an organization that is not in
// this database: with a platform reached over HTTP (docs/PLATFORM.md) the
// organizations live there, and connecting a Jira to one of them must not
// trip a foreign key. The built-in platform keeps its own check:
// DeleteOrganization refuses while an installation serves it. SQLite
// drops a foreign key by rebuilding the table.
const migration7 = `
CREATE TABLE installation_organizations_new (
	installation_id  TEXT NOT NULL REFERENCES installations(id) ON DELETE CASCADE,
	organization_id  TEXT NOT NULL,
	inbound_assignee INTEGER NOT NULL DEFAULT 1,
	PRIMARY KEY (installation_id, organization_id)
);
INSERT INTO installation_organizations_new(installation_id, organization_id, inbound_assignee)
	SELECT installation_id, organization_id, inbound_assignee FROM installation_organizations;
DROP TABLE installation_organizations;
ALTER TABLE installation_organizations_new RENAME TO installation_organizations;
`

// migration8 starts two-way sync (issue 12): a group's status, and an
// installation's per-organization settings for the other directions.
// status_mappings is the JSON list of the Jira status to reach per Jira
// project when a group is resolved or unresolved (InstallationOrg): a
// setting read and written whole, never queried into.
const migration8 = `
ALTER TABLE issue_groups ADD COLUMN status TEXT NOT NULL DEFAULT 'unresolved';
ALTER TABLE installation_organizations ADD COLUMN outbound_assignee INTEGER NOT NULL DEFAULT 0;
ALTER TABLE installation_organizations ADD COLUMN inbound_status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE installation_organizations ADD COLUMN outbound_status INTEGER NOT NULL DEFAULT 0;
ALTER TABLE installation_organizations ADD COLUMN status_mappings TEXT NOT NULL DEFAULT '[]';
`

// migration9: the plugin's host-wide state (ABI 1.4 state_get/state_put
// with shared), read and written alike by every installation: the echo
// records of platform writes, whose events come back to every
// installation. Expired keys are pruned as plugin_state's are.
const migration9 = `
CREATE TABLE plugin_shared_state (
	key        TEXT PRIMARY KEY,
	value      TEXT NOT NULL,
	expires_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX plugin_shared_state_expiry ON plugin_shared_state(expires_at) WHERE expires_at > 0;
`
