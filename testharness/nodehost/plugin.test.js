// Tests of the Node host with the real plugin: skipped unless
// JIRASYNC_PLUGIN names the built plugin (make conformance sets it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Host } from './host.js';

const plugin = process.env.JIRASYNC_PLUGIN;
const body = readFileSync(new URL('../../fixtures/payloads/large-4k.json', import.meta.url));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function loaded() {
  const h = new Host({
    platform: {
      organizations: [{ id: 'acme' }], projects: [{ id: 'backend', organization: 'acme' }],
      users: [{ id: 'alice', emails: [{ email: 'alice@example.com', verified: true }], projects: ['backend'] }],
      groups: [{ id: 'g1', project: 'backend', assignee: null }],
      links: [{ group: 'g1', installation: 'jira1', issue_key: 'APP-1' }],
    },
    // The payload carries the email: no Jira request, so no key needed.
    installations: [{ id: 'jira1', external_id: 'x', base_url: 'http://127.0.0.1:1', consumer_key: 'ck', private_key_pem: '',
      access_token: 'at', access_token_secret: 's', organizations: [{ id: 'acme', inbound_assignee: true }] }],
  }, () => {});
  await h.loadPlugin(plugin);
  return h;
}

// A delivery's host calls: installation, the issue's echo record (ABI
// 1.4), linked groups, users by email, groups_assign, the log line; the
// first delivery, which changes the group, also records that change for
// the platform's echo.
async function deliver(h, first) {
  const r = await h.call('handle_issue_updated', 'jira1', body);
  assert.equal(r.exportError, undefined);
  assert.equal(r.fault, undefined);
  assert.equal(JSON.parse(Buffer.from(r.output).toString()).summary.outcome, 'synced');
  assert.equal(r.hostCalls, first ? 7 : 6);
  return r;
}

// Kept instances: one for every successful call (an instance used to be
// thrown away after each, its output read as an error).
test('an instance is kept after success, and applies what it staged', { skip: !plugin }, async () => {
  const h = await loaded();
  try {
    for (let i = 0; i < 5; i++) await deliver(h, i === 0);
    assert.equal(h.instances, 1);
    assert.deepEqual(h.groupList(), [{ id: 'g1', assignee: 'alice', status: 'unresolved' }]);
  } finally {
    await h.close();
  }
});

// The memory functions (ABI 1.5) and direct calls (1.6): this host cannot
// reach the plugin's memory and answers "unsupported"; the plugin asks once
// per instance for each and then copies through the SDK's 8-byte functions
// and makes classic host calls, every call succeeding.
test('the plugin asks for bulk copies and direct calls once per instance, then falls back', { skip: !plugin }, async () => {
  const h = await loaded();
  try {
    for (let i = 0; i < 5; i++) await deliver(h, i === 0);
    assert.equal(h.instances, 1);
    assert.equal(h.copyCalls, 1);
    assert.equal(h.directCalls, 1);
  } finally {
    await h.close();
  }
});

// Without a reset before each call, the SDK's worker mode keeps every
// earlier call's blocks and copies them across threads on each host call:
// the 250th call took tens of times the first's.
test('calls do not slow down as they accumulate', { skip: !plugin }, async () => {
  const h = await loaded();
  try {
    const times = [];
    for (let i = 0; i < 250; i++) times.push((await deliver(h, i === 0)).elapsedNs);
    const first = median(times.slice(10, 30));
    const last = median(times.slice(-20));
    assert.ok(last < 3 * first + 5e6, `last calls ${last / 1e6} ms, first ${first / 1e6} ms`);
  } finally {
    await h.close();
  }
});

// ABI 1.4 through the real plugin: a platform event becomes a Jira write,
// the webhook Jira sends back for it is recognised as its echo (and not
// passed on to the issue's other group), and a person's change in Jira,
// applied to the groups, is recognised when the platform's event for it
// comes back.
test('two-way sync settles: events out, echoes in, both ways', { skip: !plugin }, async () => {
  const { generateKeyPairSync } = await import('node:crypto');
  const http = await import('node:http');
  const keyPEM = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' });
  const jira = { assignee: null, requests: [] };
  const srv = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const url = new URL(req.url, 'http://x');
      jira.requests.push(`${req.method} ${url.pathname}${body ? ' ' + body : ''}`);
      const json = (status, v) => {
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(v === undefined ? '' : JSON.stringify(v));
      };
      if (url.pathname === '/rest/api/2/user/search') {
        return json(200, [{ name: 'alice', emailAddress: 'alice@example.com' }, { name: 'alice.old', emailAddress: 'old@example.com' }]);
      }
      if (req.method === 'GET' && url.pathname === '/rest/api/2/issue/APP-1') {
        return json(200, { key: 'APP-1', fields: { assignee: jira.assignee && { name: jira.assignee }, status: { id: '1' } } });
      }
      if (req.method === 'PUT' && url.pathname === '/rest/api/2/issue/APP-1/assignee') {
        jira.assignee = JSON.parse(body).name;
        return json(204);
      }
      return json(404, { errorMessages: ['no'] });
    });
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  const h = new Host({
    platform: {
      organizations: [{ id: 'acme' }], projects: [{ id: 'backend', organization: 'acme' }],
      users: [{ id: 'alice', emails: [{ email: 'alice@example.com', verified: true }], projects: ['backend'] },
        { id: 'bob', emails: [{ email: 'bob@example.com', verified: true }], projects: ['backend'] }],
      groups: [{ id: 'g1', project: 'backend', assignee: 'alice' }, { id: 'g2', project: 'backend', assignee: null }],
      links: [{ group: 'g1', installation: 'jira1', issue_key: 'APP-1' }, { group: 'g2', installation: 'jira1', issue_key: 'APP-1' }],
    },
    installations: [{ id: 'jira1', external_id: 'x', base_url: `http://127.0.0.1:${srv.address().port}`, consumer_key: 'ck',
      private_key_pem: keyPEM, access_token: 'at', access_token_secret: 's',
      organizations: [{ id: 'acme', inbound_assignee: true, outbound_assignee: true }] }],
  }, () => {});
  const summary = (r) => {
    assert.equal(r.exportError, undefined);
    assert.equal(r.fault, undefined);
    return JSON.parse(Buffer.from(r.output).toString()).summary;
  };
  const webhook = (name) => Buffer.from(JSON.stringify({ timestamp: Date.now(), webhookEvent: 'jira:issue_updated',
    issue: { id: '10001', key: 'APP-1', fields: { assignee: { name, emailAddress: `${name}@example.com` } } },
    changelog: { id: String(Date.now()), items: [{ field: 'assignee' }] } }));
  const event = (assignee) => Buffer.from(JSON.stringify({ id: `ev-${assignee}`, type: 'group.assigned', group: 'g1', assignee,
    occurred_at: new Date().toISOString() }));
  try {
    await h.loadPlugin(plugin);
    // g1 assigned to alice on the platform: APP-1 follows.
    const out = summary(await h.call('handle_platform_event', 'jira1', event('alice')));
    assert.deepEqual(out.issues, [{ key: 'APP-1', action: 'assigned', assignee: 'alice' }]);
    assert.deepEqual(jira.requests.filter((r) => r.startsWith('PUT')), ['PUT /rest/api/2/issue/APP-1/assignee {"name":"alice"}']);
    // Jira's webhook for that write: the echo, not passed on to g2.
    const echo = summary(await h.call('handle_issue_updated', 'jira1', webhook('alice')));
    assert.equal(echo.reason, 'echo');
    assert.deepEqual(h.groupList().map((g) => g.assignee), ['alice', null]);
    // A person assigns bob in Jira: both groups follow, and the
    // platform's event for g1 is the echo, sent nowhere.
    const writes = jira.requests.length;
    assert.equal(summary(await h.call('handle_issue_updated', 'jira1', webhook('bob'))).assigned, 2);
    assert.deepEqual(h.groupList().map((g) => g.assignee), ['bob', 'bob']);
    assert.equal(summary(await h.call('handle_platform_event', 'jira1', event('bob'))).reason, 'echo');
    assert.equal(jira.requests.length, writes, 'an echoed event made Jira requests');
    assert.equal(h.invalidAnswers, 0);
  } finally {
    srv.close();
    await h.close();
  }
});
