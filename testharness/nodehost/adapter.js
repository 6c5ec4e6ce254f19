#!/usr/bin/env node
// The conformance kit's adapter for the Node host (docs/CONFORMANCE.md):
// one JSON request per line on stdin, one JSON answer per line on stdout.
// Logs go to stderr as JSON lines.
import { createInterface } from 'node:readline';
import { Host } from './host.js';

// Protocol 2 adds to 1 (docs/CONFORMANCE.md): the outbound settings in
// load, and the kit's platform events through handle_platform_event,
// which this host already offers. An adapter of 2 reads what a kit of 1 sends.
const PROTOCOLS = [1, 2];

function log(level, message, fields = {}) {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg: message, component: 'node-host', ...fields }) + '\n');
}

let host = null;

async function handle(req) {
  switch (req.op) {
    case 'load': {
      if (host) throw new Error('already loaded');
      if (!PROTOCOLS.includes(req.protocol)) throw new Error(`protocol ${req.protocol}: this adapter speaks ${PROTOCOLS.join(' and ')}`);
      const h = new Host(req, log);
      await h.loadPlugin(req.plugin);
      host = h;
      return {};
    }
    case 'call': {
      if (!host) throw new Error('not loaded');
      const r = await host.call(req.export, req.installation, Buffer.from(req.input ?? '', 'base64'));
      const out = { elapsed_ns: r.elapsedNs, host_ns: r.hostNs, host_calls: r.hostCalls };
      if (r.output && r.output.length) out.output = Buffer.from(r.output).toString('base64');
      if (r.exportError !== undefined) out.export_error = r.exportError;
      if (r.fault !== undefined) out.fault = r.fault;
      return out;
    }
    case 'groups':
      return { groups: host.groupList() };
    case 'state':
      return { state: host.liveState() };
    case 'close':
      await host?.close();
      host = null;
      return {};
    default:
      throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
// One request at a time, in order: the protocol is strictly request/answer.
for await (const line of lines) {
  let req;
  let answer;
  try {
    req = JSON.parse(line);
    answer = { ok: true, ...(await handle(req)) };
  } catch (e) {
    answer = { ok: false, error: String(e?.message ?? e) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
  if (req?.op === 'close') break;
}
process.exit(0);
