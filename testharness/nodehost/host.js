// A second host for the jirasync plugin, written from docs/ABI.md alone:
// the platform and the plugin's state in memory, Jira requests signed with
// OAuth 1.0a RSA-SHA1, every host function's answer validated against
// docs/abi.schema.json before the plugin sees it.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { fileURLToPath } from 'node:url';
import createPlugin from '@extism/extism';
import Ajv2020 from 'ajv/dist/2020.js';
import { authorization } from './oauth.js';

const schemaPath = fileURLToPath(new URL('../../docs/abi.schema.json', import.meta.url));
const schema = JSON.parse(readFileSync(schemaPath, 'utf8'));
// strict off: the schema carries its own x-jirasync member.
const ajv = new Ajv2020({ strict: false, allErrors: false });
ajv.addSchema(schema);
const validators = new Map();
export function validator(def) {
  if (!validators.has(def)) validators.set(def, ajv.getSchema(`${schema.$id}#/$defs/${def}`));
  return validators.get(def);
}

export const NAMESPACE = schema['x-jirasync'].host_namespace;
export const HOST_FUNCTIONS = schema['x-jirasync'].host_functions;
// Since ABI 1.5: raw functions copying between the kernel's memory and the
// plugin's, no JSON envelope. This SDK's host functions cannot reach the
// plugin's memory (in worker mode it lives in another thread), so this
// host answers "unsupported", and the plugin copies through the SDK's
// 8-byte kernel functions for the rest of the instance's life.
export const MEMORY_FUNCTIONS = schema['x-jirasync'].memory_functions;
export const COPY_UNSUPPORTED = BigInt(schema['x-jirasync'].memory_function_results.unsupported);
// Since ABI 1.6: direct calls, a host function run with its name, request
// and answer in the plugin's memory. For the same reason this host answers
// them "unsupported", and the plugin makes classic host-function calls
// (kernel blocks) for the rest of the instance's life.
export const DIRECT_FUNCTIONS = schema['x-jirasync'].direct_functions;
export const DIRECT_UNSUPPORTED = BigInt(schema['x-jirasync'].direct_function_results.unsupported);
const MAJOR = schema['x-jirasync'].abi_version.split('.')[0];

const LIMITS = {
  callTimeoutMs: 30_000, // docs/ABI.md: each export call is bounded in time
  maxPages: 1024, // 64 MiB; not applied to the module by this SDK (docs/CONFORMANCE.md)
  jiraTimeoutMs: 10_000,
  jiraAnswerBytes: 1 << 20,
  stateValueBytes: 64 << 10,
  stateKeyBytes: 512,
  logFields: 32,
};

class HostError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}
const fail = (code, message) => {
  throw new HostError(code, message);
};

const utf8Length = (s) => Buffer.byteLength(s, 'utf8');
const normEmail = (s) => s.trim().toLowerCase();

// Path rule of jirasync_jira_request: /rest/ and unreserved characters and
// slashes only, no dot segments. Allow-listed, never pattern-denied.
export function checkPath(path) {
  if (typeof path !== 'string' || !path.startsWith('/rest/') || !/^[A-Za-z0-9\-._~/]+$/.test(path)) return false;
  return !path.split('/').some((seg) => seg === '.' || seg === '..');
}
const QUERY_NAME = /^[A-Za-z0-9\-._~]+$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export class Host {
  // data: the load request (docs/CONFORMANCE.md).
  constructor(load, log) {
    this.log = log;
    const p = load.platform ?? {};
    this.orgs = new Set((p.organizations ?? []).map((o) => o.id));
    this.projects = new Map((p.projects ?? []).map((x) => [x.id, x]));
    this.users = p.users ?? []; // in order: oldest first
    this.groups = new Map((p.groups ?? []).map((g) => [g.id, { ...g, assignee: g.assignee ?? null, status: g.status || 'unresolved' }]));
    this.links = p.links ?? [];
    this.installations = new Map((load.installations ?? []).map((i) => [i.id, i]));
    this.state = new Map(); // installation -> Map(key -> {value, expires})
    this.shared = new Map(); // since ABI 1.4: host-wide, key -> {value, expires}
    this.deliveries = 0;
    this.invalidAnswers = 0;
    for (const l of this.links) {
      if (!this.groups.has(l.group) || !this.installations.has(l.installation)) throw new Error(`link ${JSON.stringify(l)}: unknown group or installation`);
    }
    for (const g of this.groups.values()) {
      if (!this.projects.has(g.project)) throw new Error(`group ${g.id}: unknown project ${g.project}`);
    }
  }

  async loadPlugin(path) {
    this.module = readFileSync(path);
    await this.#instantiate();
    const d = await this.callExport('describe', new Uint8Array(), null);
    if (d.exportError || d.fault) throw new Error(`describe failed: ${d.exportError ?? d.fault}`);
    const desc = JSON.parse(Buffer.from(d.output).toString('utf8'));
    if (String(desc.abi_version).split('.')[0] !== MAJOR) throw new Error(`plugin speaks ABI ${desc.abi_version}, this host ${MAJOR}.x`);
    for (const f of desc.imports ?? []) {
      if (![HOST_FUNCTIONS, MEMORY_FUNCTIONS, DIRECT_FUNCTIONS].some((l) => l.includes(f))) throw new Error(`plugin imports ${f}, which this host does not offer`);
    }
    return desc;
  }

  async #instantiate() {
    this.instances = (this.instances ?? 0) + 1;
    const functions = {};
    for (const name of HOST_FUNCTIONS) {
      functions[name] = (ctx, offset) => this.#serve(ctx, name, offset);
    }
    for (const name of MEMORY_FUNCTIONS) {
      functions[name] = () => {
        this.copyCalls = (this.copyCalls ?? 0) + 1;
        return COPY_UNSUPPORTED;
      };
    }
    for (const name of DIRECT_FUNCTIONS) {
      functions[name] = () => {
        this.directCalls = (this.directCalls ?? 0) + 1;
        return DIRECT_UNSUPPORTED;
      };
    }
    // Worker mode: the only mode where timeoutMs stops a guest that does
    // not return, and where host functions may be async (Jira requests).
    this.plugin = await createPlugin(
      { wasm: [{ data: this.module }] },
      {
        useWasi: true,
        runInWorker: true,
        timeoutMs: LIMITS.callTimeoutMs,
        functions: { [NAMESPACE]: functions },
        allowedHosts: [],
        memory: { maxPages: LIMITS.maxPages, maxHttpResponseBytes: 0, maxVarBytes: 0 },
        logger: { trace() {}, debug() {}, info() {}, warn: console.error, error: console.error },
      },
    );
  }

  // callExport runs one export for a binding ({installation, delivery,
  // staged} or null for describe/inspect_delivery). The SDK drops the
  // return code: a failure is its thrown "Plugin-originated error", and
  // anything else thrown is a fault, after which the instance is dropped.
  async callExport(exportName, input, binding) {
    this.instances ??= 0;
    this.hostNs = 0n;
    this.hostCalls = 0;
    const start = process.hrtime.bigint();
    const r = {};
    try {
      // In worker mode the SDK does not free the previous call's blocks
      // (input, output, host answers): without a reset they pile up, and
      // every host call copies them between the threads, so each call
      // gets slower than the last.
      await this.plugin.reset();
      const out = await this.plugin.call(exportName, input, binding);
      r.output = out ? new Uint8Array(out.buffer, out.byteOffset, out.byteLength) : new Uint8Array();
    } catch (e) {
      const msg = String(e?.message ?? e);
      const prefix = 'Plugin-originated error: ';
      if (msg.startsWith(prefix)) r.exportError = msg.slice(prefix.length);
      else r.fault = msg;
    }
    r.elapsedNs = Number(process.hrtime.bigint() - start);
    r.hostNs = Number(this.hostNs);
    r.hostCalls = this.hostCalls;
    if (r.fault || this.#internal(r)) {
      // docs/ABI.md, Instances: never reuse an instance after a fault or an
      // internal error.
      await this.plugin.close().catch(() => {});
      await this.#instantiate();
    }
    return r;
  }

  // #internal reports an error text that is an internal error, or not an
  // ABI error at all: both drop the instance.
  #internal(r) {
    if (r.exportError === undefined) return false;
    try {
      const e = JSON.parse(r.exportError);
      return !e?.code || e.code === 'internal';
    } catch {
      return true;
    }
  }

  // handleDelivery runs handle_issue_updated and applies the staged
  // assignments when it succeeded.
  async handleDelivery(installationId, body) {
    const binding = this.#bind(installationId);
    binding.delivery = ++this.deliveries;
    const r = await this.callExport('handle_issue_updated', body, binding);
    if (!r.exportError && !r.fault) {
      let out;
      try {
        out = JSON.parse(Buffer.from(r.output).toString('utf8'));
      } catch {
        out = null;
      }
      if (out?.summary && !out.error) {
        for (const a of binding.staged) this.groups.get(a.group).assignee = a.assignee ?? null;
        for (const c of binding.stagedStatuses) this.groups.get(c.group).status = c.status;
      }
    }
    return r;
  }

  #bind(installationId) {
    const installation = this.installations.get(installationId);
    if (!installation) throw new Error(`unknown installation ${installationId}`);
    return { installation, delivery: 0, staged: [], stagedStatuses: [] };
  }

  async call(exportName, installationId, input) {
    if (exportName === 'handle_issue_updated') return this.handleDelivery(installationId, input);
    // describe and inspect_delivery are bound to nothing.
    const bound = exportName === 'describe' || exportName === 'inspect_delivery' ? null : this.#bind(installationId);
    // A platform event (ABI 1.4) is a delivery of its own, as a webhook's
    // is; it stages nothing (its effect is the plugin's Jira writes).
    if (exportName === 'handle_platform_event') bound.delivery = ++this.deliveries;
    return this.callExport(exportName, input, bound);
  }

  groupList() {
    return [...this.groups.values()].map((g) => ({ id: g.id, assignee: g.assignee, status: g.status })).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  liveState() {
    const now = Date.now();
    const out = {};
    for (const [inst, kv] of this.state) {
      for (const [k, v] of kv) {
        if (v.expires && v.expires <= now) continue;
        (out[inst] ??= {})[k] = v.value;
      }
    }
    return out;
  }

  async close() {
    await this.plugin?.close();
  }

  // #serve answers one host call: never a trap, always an envelope.
  async #serve(ctx, name, offset) {
    const start = process.hrtime.bigint();
    const block = ctx.read(offset);
    const answer = await this.answer(ctx.hostContext(), name, block ? block.text() : '');
    const at = ctx.store(JSON.stringify(answer));
    this.hostNs += process.hrtime.bigint() - start;
    this.hostCalls++;
    return at;
  }

  // answer is host function name's answer to the request text for a
  // binding (null outside an installation's call): the success members,
  // checked against the ABI schema, or the error envelope alone.
  async answer(binding, name, text) {
    try {
      if (!Object.hasOwn(this.#handlers, name)) fail('invalid_request', `unknown host function ${name}`);
      if (!binding) fail('denied', `host function ${name} called outside an installation's call`);
      let req;
      try {
        req = JSON.parse(text);
      } catch (e) {
        fail('invalid_request', `request: ${e.message}`);
      }
      if (req === null || typeof req !== 'object' || Array.isArray(req)) fail('invalid_request', 'request: not a JSON object');
      const answer = await this.#handlers[name].call(this, binding, req);
      const valid = validator(`${name}.response`);
      if (!valid(answer)) {
        // Our own bug: say so rather than hand the plugin a bad answer.
        this.invalidAnswers++;
        this.log('error', 'host answer does not match the ABI schema', { function: name, errors: valid.errors });
        fail('internal', `host function ${name} answered outside the ABI`);
      }
      return answer;
    } catch (e) {
      if (!(e instanceof HostError)) this.log('error', 'host function failed', { function: name, error: String(e?.stack ?? e) });
      return { error: { code: e instanceof HostError ? e.code : 'internal', message: e instanceof HostError ? e.message : `host function ${name} failed` } };
    }
  }

  // #stateOf is the state a state request means: the host-wide one with
  // shared (since ABI 1.4), else the installation's (made when create).
  #stateOf(b, r, create) {
    if (r.shared !== undefined && typeof r.shared !== 'boolean') fail('invalid_request', 'shared must be a boolean');
    if (r.shared) return this.shared;
    if (create && !this.state.has(b.installation.id)) this.state.set(b.installation.id, new Map());
    return this.state.get(b.installation.id);
  }

  // bind is the binding of a call for an installation, as callExport
  // passes it; exported for tests.
  bind(installationId) {
    return this.#bind(installationId);
  }

  #handlers = {
    jirasync_log(b, r) {
      const levels = ['debug', 'info', 'warn', 'error'];
      const fields = {};
      let n = 0;
      for (const [k, v] of Object.entries(r.fields ?? {})) {
        if (k === 'installation' || k === 'delivery' || (k === 'issue_key' && b.delivery)) continue;
        if (++n > LIMITS.logFields) break;
        fields[k] = v;
      }
      this.log(levels.includes(r.level) ? r.level : 'info', String(r.message ?? ''), {
        ...fields, source: 'plugin', installation: b.installation.id, ...(b.delivery ? { delivery: b.delivery } : {}),
      });
      return {};
    },

    jirasync_installation_get(b) {
      const i = b.installation;
      return { id: i.id, external_id: i.external_id, base_url: i.base_url,
        organizations: i.organizations.map((o) => ({ id: o.id, inbound_assignee: o.inbound_assignee,
          ...(o.inbound_status ? { inbound_status: true } : {}),
          // Since ABI 1.4: the outbound directions, left out when off.
          ...(o.outbound_assignee ? { outbound_assignee: true } : {}),
          ...(o.outbound_status ? { outbound_status: true } : {}),
          ...(o.status_mappings?.length ? { status_mappings: o.status_mappings.map((m) => ({
            jira_project: m.jira_project, resolve_status: m.resolve_status, unresolve_status: m.unresolve_status })) } : {}) })) };
    },

    // Since ABI 1.4: one group, with the keys of the issues linked to it
    // through the call's installation, whatever organizations it serves
    // (the plugin checks that).
    jirasync_group_get(b, r) {
      if (typeof r.group !== 'string') fail('invalid_request', 'group must be a string');
      const g = this.groups.get(r.group);
      if (!g) fail('not_found', `no group ${r.group.slice(0, 200)}`);
      const keys = new Set(this.links.filter((l) => l.installation === b.installation.id && l.group === g.id).map((l) => l.issue_key));
      return { group: { id: g.id, organization: this.projects.get(g.project).organization, project: g.project,
        assignee: g.assignee, status: g.status, issue_keys: [...keys].sort() } };
    },

    // Since ABI 1.4: one user with its emails, as the platform has them.
    jirasync_user_get(b, r) {
      if (typeof r.user !== 'string') fail('invalid_request', 'user must be a string');
      const u = this.users.find((x) => x.id === r.user);
      if (!u) fail('not_found', `no user ${r.user.slice(0, 200)}`);
      return { user: { id: u.id, emails: (u.emails ?? []).map((e) => ({ email: e.email, verified: !!e.verified })) } };
    },

    async jirasync_jira_request(b, r) {
      const method = (typeof r.method === 'string' ? r.method : '').toUpperCase() || 'GET';
      if (typeof r.path !== 'string') fail('invalid_request', 'path must be a string');
      if (!['GET', 'POST', 'PUT', 'DELETE'].includes(method)) fail('denied', `method ${method} is not allowed`);
      if (!checkPath(r.path)) fail('denied', `path ${JSON.stringify(r.path).slice(0, 200)} is not allowed`);
      if (r.substitute) fail('denied', 'substitution is only for the install flow');
      if (r.body !== undefined && typeof r.body !== 'string') fail('invalid_request', 'body must be a string');
      const url = new URL(b.installation.base_url.replace(/\/+$/, '') + r.path);
      for (const [k, vs] of Object.entries(r.query ?? {})) {
        if (!QUERY_NAME.test(k)) fail('denied', `query name ${JSON.stringify(k).slice(0, 100)} is not allowed`);
        if (!Array.isArray(vs)) fail('invalid_request', `query ${k}: want a list of strings`);
        for (const v of vs) {
          if (typeof v !== 'string' || CONTROL.test(v)) fail('denied', `query ${k}: value is not allowed`);
          url.searchParams.append(k, v);
        }
      }
      let auth;
      try {
        auth = authorization(method, url, b.installation);
      } catch (e) {
        fail('jira_rejected', `installation key: ${e.message}`);
      }
      const res = await send(method, url, auth, r.body ?? '');
      return { status: res.status, body: res.body };
    },

    jirasync_groups_linked(b, r) {
      if (typeof r.issue_key !== 'string') fail('invalid_request', 'issue_key must be a string');
      const key = r.issue_key.trim();
      const wanted = new Set(r.organizations ?? []);
      const served = new Set(b.installation.organizations.map((o) => o.id));
      const ids = new Set(this.links.filter((l) => l.installation === b.installation.id && l.issue_key === key).map((l) => l.group));
      const out = [];
      for (const id of [...ids].sort()) {
        const g = this.groups.get(id);
        const org = this.projects.get(g.project).organization;
        if (wanted.has(org) && served.has(org)) out.push({ id, organization: org, project: g.project, assignee: g.assignee, status: g.status });
      }
      return { groups: out };
    },

    jirasync_users_by_email(b, r) {
      if (typeof r.email !== 'string' || r.email.trim() === '') fail('invalid_request', 'email is empty');
      const want = normEmail(r.email);
      const users = [];
      for (const u of this.users) {
        const match = (u.emails ?? []).filter((e) => normEmail(e.email) === want);
        if (match.length === 0) continue;
        users.push({ id: u.id, verified: match.some((e) => e.verified), projects: [...(u.projects ?? [])].sort() });
      }
      return { users };
    },

    jirasync_groups_assign(b, r) {
      if (!Array.isArray(r.assignments ?? [])) fail('invalid_request', 'assignments must be a list');
      if (!Array.isArray(r.statuses ?? [])) fail('invalid_request', 'statuses must be a list');
      const assignments = r.assignments ?? [];
      const statuses = r.statuses ?? [];
      const served = new Set(b.installation.organizations.map((o) => o.id));
      const reachable = (id) => {
        const g = this.groups.get(id);
        const reach = g && served.has(this.projects.get(g.project).organization) &&
          this.links.some((l) => l.group === g.id && l.installation === b.installation.id);
        if (!reach) fail('denied', `group ${String(id).slice(0, 200)} is not linked to installation ${b.installation.id}`);
        return g;
      };
      let changed = 0;
      for (const a of assignments) {
        if (a.assignee !== null && a.assignee !== undefined && typeof a.assignee !== 'string') fail('invalid_request', 'assignee must be a user id or null');
        const g = reachable(a?.group);
        if ((g.assignee ?? null) !== (a.assignee ?? null)) changed++;
      }
      // Since ABI 1.3: statuses are checked and staged with the assignments.
      for (const c of statuses) {
        if (c?.status !== 'resolved' && c?.status !== 'unresolved') fail('invalid_request', `status ${JSON.stringify(c?.status).slice(0, 100)}: want resolved or unresolved`);
        const g = reachable(c.group);
        if (g.status !== c.status) changed++;
      }
      // Checked all, then staged all: a refused call stages nothing.
      for (const a of assignments) b.staged.push({ group: a.group, assignee: a.assignee ?? null });
      for (const c of statuses) b.stagedStatuses.push({ group: c.group, status: c.status });
      return { changed };
    },

    jirasync_state_get(b, r) {
      if (typeof r.key !== 'string') fail('invalid_request', 'key must be a string');
      const v = this.#stateOf(b, r, false)?.get(r.key);
      if (!v || (v.expires && v.expires <= Date.now())) return { value: '', found: false };
      return { value: v.value, found: true };
    },

    jirasync_state_put(b, r) {
      if (typeof r.key !== 'string' || r.key === '' || utf8Length(r.key) > LIMITS.stateKeyBytes) fail('invalid_request', 'key must be 1-512 bytes');
      const ttl = r.ttl_seconds ?? 0;
      if (typeof ttl !== 'number' || !Number.isInteger(ttl)) fail('invalid_request', 'ttl_seconds must be an integer');
      if (ttl < 0) fail('invalid_request', 'ttl_seconds is negative');
      const kv = this.#stateOf(b, r, true);
      if (r.delete) {
        kv.delete(r.key);
        return {};
      }
      const value = r.value ?? '';
      if (typeof value !== 'string') fail('invalid_request', 'value must be a string');
      if (utf8Length(value) > LIMITS.stateValueBytes) fail('invalid_request', 'value is over 64 KiB');
      kv.set(r.key, { value, expires: ttl > 0 ? Date.now() + ttl * 1000 : 0 });
      return {};
    },
  };
}

// send makes one signed request on a fresh connection (no keep-alive: a
// request re-sent on a dead pooled connection would repeat its nonce), no
// redirects followed, bounded in time and size.
function send(method, url, auth, body) {
  const mod = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : null;
  if (!mod) fail('denied', `base URL scheme ${url.protocol} is not allowed`);
  return new Promise((resolve, reject) => {
    const headers = { Authorization: auth, Accept: 'application/json', Connection: 'close' };
    if (body !== '') {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = Buffer.byteLength(body);
    }
    const req = mod.request(url, { method, headers, agent: false, timeout: LIMITS.jiraTimeoutMs }, (res) => {
      const chunks = [];
      let size = 0;
      res.on('data', (c) => {
        if (size >= LIMITS.jiraAnswerBytes) return;
        chunks.push(c.subarray(0, LIMITS.jiraAnswerBytes - size));
        size += c.length;
      });
      res.on('end', () => resolve({ status: res.statusCode, body: new TextDecoder('utf-8').decode(Buffer.concat(chunks)) }));
      res.on('error', (e) => reject(new HostError('unavailable', `jira answer: ${e.message}`)));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => reject(new HostError('unavailable', `jira unreachable: ${method} ${url.pathname}: ${e.code ?? e.message}`)));
    req.end(body === '' ? undefined : body);
  });
}
