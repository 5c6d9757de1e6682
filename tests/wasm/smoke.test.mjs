// Smoke test of the wasm client against a real rt-server and redis-server (free ports,
// stopped by PID): publish, receive; rt-server restarted on the same port while messages
// are published straight into Redis (publish.lua, as any backend would); the client
// reconnects and gets every message exactly once, in order.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { createClient, wasmBinary } from './helpers.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const serverBin = process.env.RT_SERVER_BIN || path.join(root, 'build/rt-server');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function start(cmd, args, name) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log = (log + d).slice(-4000); });
  child.logTail = () => `${name} log: ${log}`;
  return child;
}

async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  process.kill(child.pid, 'SIGTERM');
  const t = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ } }, 5000);
  await done;
  clearTimeout(t);
}

async function waitFor(what, fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    try { if (await fn()) return; } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const haveServers = existsSync(serverBin) && (() => {
  try { execFileSync('redis-server', ['--version']); return true; } catch { return false; }
})();

test('smoke: real rt-server + redis; restart; no duplicate, no loss', { skip: !haveServers && `needs ${serverBin} and redis-server`, timeout: 60000 }, async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rt-wasm-smoke-'));
  const token = 'smoke-token-' + process.pid;
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, token + '\n');
  const redisPort = await freePort();
  const port = await freePort();
  const redis = start('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '',
    '--appendonly', 'no', '--dir', dir], 'redis');
  let server = null;
  let rt = null;
  t.after(async () => {
    if (rt) rt.close();
    await stop(server);
    await stop(redis);
    rmSync(dir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${port}`;
  const startServer = async () => {
    const s = start(serverBin, ['--listen', `127.0.0.1:${port}`, '--redis', `redis://127.0.0.1:${redisPort}`,
      '--publish-token-file', tokenFile, '--poll-timeout', '2', '--lua-dir', path.join(root, 'server/lua')], 'rt-server');
    await waitFor('rt-server /healthz', async () => (await fetch(`${base}/healthz`)).status === 200).catch((e) => {
      throw new Error(`${e.message}\n${s.logTail()}`);
    });
    return s;
  };
  await waitFor('redis', () => execFileSync('redis-cli', ['-p', String(redisPort), 'ping'],
    { stdio: ['ignore', 'pipe', 'ignore'] }).toString().includes('PONG'));
  server = await startServer();

  const publishHttp = async (n) => {
    const r = await fetch(`${base}/publish?c=smoke.1`, {
      method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ n }),
    });
    assert.equal(r.status, 200, await r.clone().text());
    return (await r.json()).id;
  };
  // Publishing straight into Redis with the shipped script, as an application backend does.
  const publishRedis = (n) => Number(execFileSync('redis-cli', ['-p', String(redisPort), '--eval',
    path.join(root, 'server/lua/publish.lua'), 'channel:{smoke.1}:msg_id', 'channel:{smoke.1}:msg_backlog',
    'channel:{smoke.1}:pubsub', ',', JSON.stringify({ n }), '100', '0']).toString().trim());

  const got = [];
  const statuses = [];
  rt = await createClient({ baseUrl: base, wasmBinary, pollTimeoutMs: 2000, deadlineMarginMs: 2000,
    window: null, document: null, navigator: null });
  rt.onStatus((s) => statuses.push(s.state));
  rt.subscribe('smoke.1', { lastId: 0, onMessage: (p, id) => got.push([id, p.n]), onReset: () => assert.fail('unexpected reset') });
  await waitFor('live', () => statuses.includes('live'));

  // Version-2 ids: max(N + 1, Redis TIME in µs), increasing, not dense.
  const ids = [];
  const add = (id) => {
    assert.ok(Number.isSafeInteger(id) && id > (ids.at(-1) ?? 0), `id ${id} after ${ids.at(-1)}`);
    ids.push(id);
  };
  for (let n = 1; n <= 5; n++) add(await publishHttp(n));
  await waitFor('messages 1..5', () => got.length >= 5);

  // rt-server goes away; messages keep coming into Redis meanwhile.
  await stop(server);
  server = null;
  for (let n = 6; n <= 10; n++) add(publishRedis(n));
  await waitFor('retrying', () => statuses.at(-1) === 'retrying');
  await sleep(300);
  server = await startServer();  // same port
  for (let n = 11; n <= 15; n++) add(await publishHttp(n));
  await waitFor('messages 1..15', () => got.length >= 15, 20000);
  await sleep(500);  // any duplicate would arrive now
  assert.deepEqual(got, ids.map((id, i) => [id, i + 1]));
  assert.equal(statuses.at(-1), 'live');
  assert.equal(rt.lastId('smoke.1'), ids.at(-1));
});
