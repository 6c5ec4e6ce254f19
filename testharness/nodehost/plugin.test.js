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

async function deliver(h) {
  const r = await h.call('handle_issue_updated', 'jira1', body);
  assert.equal(r.exportError, undefined);
  assert.equal(r.fault, undefined);
  assert.equal(JSON.parse(Buffer.from(r.output).toString()).summary.outcome, 'synced');
  assert.equal(r.hostCalls, 5);
  return r;
}

// Kept instances: one for every successful call (an instance used to be
// thrown away after each, its output read as an error).
test('an instance is kept after success, and applies what it staged', { skip: !plugin }, async () => {
  const h = await loaded();
  try {
    for (let i = 0; i < 5; i++) await deliver(h);
    assert.equal(h.instances, 1);
    assert.deepEqual(h.groupList(), [{ id: 'g1', assignee: 'alice', status: 'unresolved' }]);
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
    for (let i = 0; i < 250; i++) times.push((await deliver(h)).elapsedNs);
    const first = median(times.slice(10, 30));
    const last = median(times.slice(-20));
    assert.ok(last < 3 * first + 5e6, `last calls ${last / 1e6} ms, first ${first / 1e6} ms`);
  } finally {
    await h.close();
  }
});
