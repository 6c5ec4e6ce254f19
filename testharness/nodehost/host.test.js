// Unit tests of the Node host's host functions, without a plugin: the
// conformance kit (make conformance) runs the real plugin through them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, createVerify } from 'node:crypto';
import http from 'node:http';
import { Host, checkPath, validator } from './host.js';
import { authorization, pct } from './oauth.js';

const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const keyPEM = privateKey.export({ type: 'pkcs1', format: 'pem' });

function newHost(baseURL = 'http://127.0.0.1:1') {
  return new Host({
    platform: {
      organizations: [{ id: 'acme' }, { id: 'other' }],
      projects: [{ id: 'backend', organization: 'acme' }, { id: 'ops', organization: 'other' }],
      users: [
        { id: 'bob', emails: [{ email: 'Shared@Example.com', verified: false }], projects: [] },
        { id: 'alice', emails: [{ email: 'alice@example.com', verified: true }, { email: 'shared@example.com', verified: true }], projects: ['ops', 'backend'] },
      ],
      groups: [{ id: 'g2', project: 'backend', assignee: 'bob' }, { id: 'g1', project: 'backend', assignee: null }, { id: 'g3', project: 'ops', assignee: null }],
      links: [
        { group: 'g2', installation: 'jira1', issue_key: 'APP-1' }, { group: 'g1', installation: 'jira1', issue_key: 'APP-1' },
        { group: 'g3', installation: 'jira1', issue_key: 'APP-1' }, { group: 'g1', installation: 'jira2', issue_key: 'APP-9' },
      ],
    },
    installations: [
      { id: 'jira1', external_id: 'x:1', base_url: baseURL, consumer_key: 'ck', private_key_pem: keyPEM, access_token: 'at', access_token_secret: 'ats', organizations: [{ id: 'acme', inbound_assignee: true }] },
      { id: 'jira2', external_id: 'x:2', base_url: baseURL, consumer_key: 'ck2', private_key_pem: 'not a key', access_token: 'at2', access_token_secret: 's',
        organizations: [{ id: 'acme', inbound_assignee: false, outbound_assignee: true, outbound_status: true,
          status_mappings: [{ jira_project: 'APP', resolve_status: 'Done', unresolve_status: '1' }] }] },
    ],
  }, () => {});
}

const call = (h, b, name, req) => h.answer(b, name, typeof req === 'string' ? req : JSON.stringify(req));

test('host functions answer as docs/ABI.md says', async (t) => {
  const cases = [
    ['linked: own installation, served orgs, by id', 'jirasync_groups_linked', { issue_key: ' APP-1 ', organizations: ['acme', 'other'] },
      { groups: [{ id: 'g1', organization: 'acme', project: 'backend', assignee: null, status: 'unresolved' },
        { id: 'g2', organization: 'acme', project: 'backend', assignee: 'bob', status: 'unresolved' }] }],
    ['linked: none for no organizations', 'jirasync_groups_linked', { issue_key: 'APP-1', organizations: [] }, { groups: [] }],
    ['users: trimmed, any case, oldest first, projects sorted', 'jirasync_users_by_email', { email: ' SHARED@example.COM ' },
      { users: [{ id: 'bob', verified: false, projects: [] }, { id: 'alice', verified: true, projects: ['backend', 'ops'] }] }],
    ['users: blank email', 'jirasync_users_by_email', { email: '  ' }, { error: { code: 'invalid_request', message: 'email is empty' } }],
    ['assign: outside reach is denied', 'jirasync_groups_assign', { assignments: [{ group: 'g1', assignee: 'alice' }, { group: 'g3', assignee: 'alice' }] },
      { error: { code: 'denied', message: 'group g3 is not linked to installation jira1' } }],
    ['assign: counts changes', 'jirasync_groups_assign', { assignments: [{ group: 'g1', assignee: 'alice' }, { group: 'g2', assignee: 'bob' }] }, { changed: 1 }],
    ['assign: statuses count as changes (ABI 1.3)', 'jirasync_groups_assign', { statuses: [{ group: 'g1', status: 'resolved' }, { group: 'g2', status: 'unresolved' }] }, { changed: 1 }],
    ['assign: unknown status', 'jirasync_groups_assign', { statuses: [{ group: 'g1', status: 'closed' }] },
      { error: { code: 'invalid_request', message: 'status "closed": want resolved or unresolved' } }],
    ['assign: status outside reach is denied', 'jirasync_groups_assign', { assignments: [{ group: 'g1', assignee: 'alice' }], statuses: [{ group: 'g3', status: 'resolved' }] },
      { error: { code: 'denied', message: 'group g3 is not linked to installation jira1' } }],
    ['state: negative ttl', 'jirasync_state_put', { key: 'k', value: 'v', ttl_seconds: -1 }, { error: { code: 'invalid_request', message: 'ttl_seconds is negative' } }],
    ['state: empty key', 'jirasync_state_put', { key: '', value: 'v' }, { error: { code: 'invalid_request', message: 'key must be 1-512 bytes' } }],
    ['state: 513-byte key', 'jirasync_state_put', { key: 'é'.repeat(257) }, { error: { code: 'invalid_request', message: 'key must be 1-512 bytes' } }],
    ['state: value over 64 KiB', 'jirasync_state_put', { key: 'k', value: 'x'.repeat(65537) }, { error: { code: 'invalid_request', message: 'value is over 64 KiB' } }],
    ['state: missing key', 'jirasync_state_get', { key: 'nope' }, { value: '', found: false }],
    ['state: shared not a boolean', 'jirasync_state_get', { key: 'k', shared: 'yes' }, { error: { code: 'invalid_request', message: 'shared must be a boolean' } }],
    ['installation: inbound settings, outbound ones left out when off', 'jirasync_installation_get', {},
      { id: 'jira1', external_id: 'x:1', base_url: 'http://127.0.0.1:1', organizations: [{ id: 'acme', inbound_assignee: true }] }],
    ['group (ABI 1.4): issues linked through this installation only', 'jirasync_group_get', { group: 'g1' },
      { group: { id: 'g1', organization: 'acme', project: 'backend', assignee: null, status: 'unresolved', issue_keys: ['APP-1'] } }],
    ['group: unknown', 'jirasync_group_get', { group: 'g9' }, { error: { code: 'not_found', message: 'no group g9' } }],
    ['group: not a string', 'jirasync_group_get', { group: 7 }, { error: { code: 'invalid_request', message: 'group must be a string' } }],
    ['user (ABI 1.4): emails as the platform has them', 'jirasync_user_get', { user: 'alice' },
      { user: { id: 'alice', emails: [{ email: 'alice@example.com', verified: true }, { email: 'shared@example.com', verified: true }] } }],
    ['user: unknown', 'jirasync_user_get', { user: 'carol' }, { error: { code: 'not_found', message: 'no user carol' } }],
    ['malformed request', 'jirasync_state_get', '{"key": 1', null],
    ['unknown function', 'jirasync_nope', {}, { error: { code: 'invalid_request', message: 'unknown host function jirasync_nope' } }],
    ['jira: path outside /rest/', 'jirasync_jira_request', { method: 'GET', path: '/secure/admin' }, { error: { code: 'denied', message: 'path "/secure/admin" is not allowed' } }],
    ['jira: method', 'jirasync_jira_request', { method: 'PATCH', path: '/rest/api/2/user' }, { error: { code: 'denied', message: 'method PATCH is not allowed' } }],
    ['jira: substitute outside the install flow', 'jirasync_jira_request', { method: 'POST', path: '/rest/x', substitute: true }, { error: { code: 'denied', message: 'substitution is only for the install flow' } }],
    ['jira: unreachable', 'jirasync_jira_request', { method: 'GET', path: '/rest/api/2/serverInfo' }, null],
  ];
  for (const [name, fn, req, want] of cases) {
    await t.test(name, async () => {
      const h = newHost();
      const b = h.bind('jira1');
      const got = await call(h, b, fn, req);
      if (want === null) {
        assert.ok(got.error, `want an error, got ${JSON.stringify(got)}`);
        assert.ok(validator('error')(got.error));
      } else {
        assert.deepEqual(got, want);
      }
      if (got.error) assert.equal(b.staged.length + b.stagedStatuses.length, 0, 'a refused call stages nothing');
      assert.equal(h.invalidAnswers, 0);
    });
  }
});

test('jira: unreachable is unavailable, a bad key jira_rejected', async () => {
  const h = newHost();
  const got = await call(h, h.bind('jira1'), 'jirasync_jira_request', { method: 'GET', path: '/rest/api/2/serverInfo' });
  assert.equal(got.error.code, 'unavailable');
  const bad = await call(h, h.bind('jira2'), 'jirasync_jira_request', { method: 'GET', path: '/rest/api/2/serverInfo' });
  assert.equal(bad.error.code, 'jira_rejected');
});

test('host calls outside an installation are denied', async () => {
  const got = await call(newHost(), null, 'jirasync_state_get', { key: 'k' });
  assert.equal(got.error.code, 'denied');
});

test('state is per installation, expires, and deletes', async () => {
  const h = newHost();
  const [a, b] = [h.bind('jira1'), h.bind('jira2')];
  assert.deepEqual(await call(h, a, 'jirasync_state_put', { key: 'k', value: 'v1' }), {});
  assert.deepEqual(await call(h, b, 'jirasync_state_get', { key: 'k' }), { value: '', found: false });
  assert.deepEqual(await call(h, a, 'jirasync_state_get', { key: 'k' }), { value: 'v1', found: true });
  await call(h, a, 'jirasync_state_put', { key: 't', value: 'v', ttl_seconds: 1 });
  h.state.get('jira1').get('t').expires = Date.now() - 1; // as if a second passed
  assert.deepEqual(await call(h, a, 'jirasync_state_get', { key: 't' }), { value: '', found: false });
  assert.deepEqual(h.liveState(), { jira1: { k: 'v1' } });
  await call(h, a, 'jirasync_state_put', { key: 'k', delete: true });
  assert.deepEqual(h.liveState(), {});
});

test('installation_get carries the outbound settings (ABI 1.4)', async () => {
  const h = newHost();
  const got = await call(h, h.bind('jira2'), 'jirasync_installation_get', {});
  assert.deepEqual(got.organizations, [{ id: 'acme', inbound_assignee: false, outbound_assignee: true, outbound_status: true,
    status_mappings: [{ jira_project: 'APP', resolve_status: 'Done', unresolve_status: '1' }] }]);
  assert.equal(h.invalidAnswers, 0);
});

test('shared state is host-wide and apart from each installation\'s (ABI 1.4)', async () => {
  const h = newHost();
  const [a, b] = [h.bind('jira1'), h.bind('jira2')];
  assert.deepEqual(await call(h, a, 'jirasync_state_put', { key: 'k', value: 'shared', shared: true, ttl_seconds: 120 }), {});
  assert.deepEqual(await call(h, b, 'jirasync_state_get', { key: 'k', shared: true }), { value: 'shared', found: true });
  assert.deepEqual(await call(h, a, 'jirasync_state_get', { key: 'k' }), { value: '', found: false });
  await call(h, a, 'jirasync_state_put', { key: 'k', value: 'mine' });
  assert.deepEqual(await call(h, b, 'jirasync_state_get', { key: 'k', shared: true }), { value: 'shared', found: true });
  assert.deepEqual(h.liveState(), { jira1: { k: 'mine' } }, 'the state op lists installations\' state only');
  h.shared.get('k').expires = Date.now() - 1; // as if two minutes passed
  assert.deepEqual(await call(h, b, 'jirasync_state_get', { key: 'k', shared: true }), { value: '', found: false });
  await call(h, b, 'jirasync_state_put', { key: 'k', value: 'x', shared: true });
  assert.deepEqual(await call(h, a, 'jirasync_state_put', { key: 'k', delete: true, shared: true }), {});
  assert.deepEqual(await call(h, b, 'jirasync_state_get', { key: 'k', shared: true }), { value: '', found: false });
  assert.equal(h.invalidAnswers, 0);
});

test('jira requests are signed, queried and answered as sent', async () => {
  let seen;
  const srv = http.createServer((req, res) => {
    seen = req;
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d])); // {"\xff"}: not UTF-8
  });
  await new Promise((r) => srv.listen(0, '127.0.0.1', r));
  try {
    const h = newHost(`http://127.0.0.1:${srv.address().port}`);
    const got = await call(h, h.bind('jira1'), 'jirasync_jira_request', { method: 'get', path: '/rest/api/2/user', query: { username: ['a b&c'] } });
    assert.deepEqual(got, { status: 404, body: '{"\uFFFD"}' });
    assert.equal(seen.method, 'GET');
    assert.equal(seen.url, '/rest/api/2/user?username=a+b%26c');
    assert.match(seen.headers.authorization, /^OAuth oauth_consumer_key="ck", .*oauth_signature_method="RSA-SHA1"/);
  } finally {
    srv.close();
  }
});

test('the OAuth signature verifies with the public key', () => {
  const url = new URL('http://Example.COM:80/rest/api/2/user?username=a%20b');
  const header = authorization('GET', url, { consumer_key: 'ck', access_token: 'at', private_key_pem: keyPEM });
  const params = Object.fromEntries([...header.slice(6).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], decodeURIComponent(m[2])]));
  const sig = params.oauth_signature;
  delete params.oauth_signature;
  params.username = 'a b';
  const norm = Object.keys(params).sort().map((k) => `${pct(k)}=${pct(params[k])}`).join('&');
  const base = `GET&${pct('http://example.com/rest/api/2/user')}&${pct(norm)}`;
  assert.ok(createVerify('RSA-SHA1').update(base).verify(publicKey, sig, 'base64'));
});

test('paths are allow-listed', () => {
  const cases = [['/rest/api/2/user', true], ['/rest/api/2/../x', false], ['/rest/x;y', false], ['/rest/a%2e', false], ['/rest/a?b', false], ['/other', false], ['/rest/./x', false], ['/rest/~a.b-c_d', true]];
  for (const [p, want] of cases) assert.equal(checkPath(p), want, p);
});

test('the schema refuses an answer of the wrong type', () => {
  assert.ok(!validator('jirasync_jira_request.response')({ status: 200, body: { a: 1 } }));
  assert.ok(validator('jirasync_jira_request.response')({ status: 200, body: '{}' }));
});
