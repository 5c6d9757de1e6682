// Integration-test harness for rt-server: private redis-server and rt-server processes on
// free loopback ports, started per test file and stopped by PID (SIGTERM, then SIGKILL).
//
// Every process's stderr goes to a file under a per-file temporary directory. When a test
// wrapped by `test()` below fails, the tail of every server log of this file is appended to
// the error, so the failure report shows what the server said. Sanitizer reports
// (ASan/UBSan/LSan) in any rt-server log fail the file, and each file ends with an explicit
// clean-shutdown check (exit code 0 after SIGTERM, no sanitizer report).

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test as nodeTest, after } from 'node:test';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const RT_SERVER_BIN = path.resolve(REPO_ROOT, process.env.RT_SERVER_BIN || 'build/rt-server');
export const PUBLISH_LUA = path.join(REPO_ROOT, 'server/lua/publish.lua');
export const TOKEN = 'test-token-' + Math.random().toString(36).slice(2);

// Sanitizer builds are slower to start and to shut down (leak check at exit).
const SLOW = /[at]san/.test(RT_SERVER_BIN) || !!process.env.ASAN_OPTIONS || !!process.env.TSAN_OPTIONS;
// Extra rt-server flags for every server the tests start, before each test's own (e.g.
// RT_SERVER_ARGS='--threads 4' for the ThreadSanitizer run).
const EXTRA_SERVER_ARGS = (process.env.RT_SERVER_ARGS || '').split(/\s+/).filter(Boolean);
const START_DEADLINE_MS = SLOW ? 20000 : 10000;
const STOP_DEADLINE_MS = SLOW ? 15000 : 5000;

export const SANITIZER_PATTERNS = [
  /ERROR: AddressSanitizer/,
  /runtime error:/,
  /LeakSanitizer/,
  /ERROR: UndefinedBehaviorSanitizer/,
  /WARNING: ThreadSanitizer/,
  /ERROR: ThreadSanitizer/,
];

// ---------------------------------------------------------------------------------------
// Small utilities

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls `cond` (sync or async; truthy result = done) every `interval` ms until `timeout` ms
// have passed. Returns the truthy value; throws with `what` (and the last value) otherwise.
export async function waitFor(cond, { timeout = 5000, interval = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await cond();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(interval);
  }
}

// A free TCP port on 127.0.0.1 (asked from the OS; closed again before returning).
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function uniqueChannel(prefix = 'ch') {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

const tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-it-'));
let keepTmp = false;

// ---------------------------------------------------------------------------------------
// Process registry: every process this file started, so failures can dump logs and the
// `after` hook can stop whatever is still running.

const procs = []; // { kind, name, child, logFile, exited: Promise, exitInfo, checked }

function track(kind, name, child, logFile) {
  const p = { kind, name, child, logFile, exitInfo: null, checked: false };
  p.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      p.exitInfo = { code, signal };
      resolve(p.exitInfo);
    });
    child.on('error', (err) => {
      p.exitInfo = { code: null, signal: null, error: err };
      resolve(p.exitInfo);
    });
  });
  procs.push(p);
  return p;
}

function readLog(file, maxBytes = 16000) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    return text.length > maxBytes ? '…' + text.slice(-maxBytes) : text;
  } catch {
    return '(no log)';
  }
}

export function sanitizerReportIn(text) {
  return SANITIZER_PATTERNS.some((re) => re.test(text));
}

function logsForFailure() {
  let out = '';
  for (const p of procs) {
    const status = p.exitInfo ? `exited ${JSON.stringify(p.exitInfo)}` : 'running';
    out += `\n----- ${p.kind} ${p.name} (pid ${p.child.pid}, ${status}) log ${p.logFile} -----\n`;
    out += readLog(p.logFile, p.kind === 'rt-server' ? 16000 : p.kind === 'redis-server' ? 600 : 3000);
  }
  return out;
}

// A process that ignored SIGTERM: append every thread's stack (gdb, when installed) to its
// log so that the failure report shows where it hangs.
function appendStacks(p) {
  const pid = p.child.pid;
  let text = '';
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const rd = (f) => { try { return fs.readFileSync(`/proc/${pid}/task/${tid}/${f}`, 'utf8').trim(); } catch { return '?'; } };
      const stat = rd('stat');
      const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
      text += `task ${tid} ${rd('comm')} state=${state} wchan=${rd('wchan')}\n`;
    }
  } catch (e) { text += `(no /proc: ${e.message})\n`; }
  const r = spawnSync('gdb', ['-p', String(pid), '-batch', '-ex', 'thread apply all bt 20'],
    { encoding: 'utf8', timeout: 30000 });
  if (r.error) text += `(no gdb stacks: ${r.error.message})\n`;
  else {
    text += (r.stdout || '').split('\n').filter((l) => /^(#|Thread )/.test(l)).join('\n');
    if (!/^#/m.test(r.stdout || '')) text += `gdb: ${(r.stderr || '').slice(0, 800)}`;
  }
  try { fs.appendFileSync(p.logFile, `\n[harness] no exit after SIGTERM; threads and stacks:\n${text}\n`); } catch { /* ignore */ }
}

// Stops a process by its PID: SIGTERM, then SIGKILL after `deadline` ms.
// Returns { code, signal, forced }.
async function stopProc(p, deadline = STOP_DEADLINE_MS) {
  if (p.exitInfo) return { ...p.exitInfo, forced: false };
  try { process.kill(p.child.pid, 'SIGTERM'); } catch { /* already gone */ }
  // Only to a process this harness froze: a stray SIGCONT while LeakSanitizer's exit-time
  // tracer stops the threads makes it wait forever.
  if (p.frozen) try { process.kill(p.child.pid, 'SIGCONT'); } catch { /* already gone */ }
  const timer = sleep(deadline).then(() => null);
  const info = await Promise.race([p.exited, timer]);
  if (info) return { ...info, forced: false };
  if (p.kind === 'rt-server') appendStacks(p);
  try { process.kill(p.child.pid, 'SIGKILL'); } catch { /* already gone */ }
  const killed = await p.exited;
  return { ...killed, forced: true };
}

// Starts any other program of a test (nginx, redis-server --sentinel, ...), tracked like
// the servers: its stdout and stderr go to `<dir>/<kind>.log` (dir: a fresh temporary
// directory, or `dir`), its log tail is shown when a test fails, and it is stopped by PID
// at the end of the file. Returns { proc, dir, logFile, pid, stop(), kill() }.
export function startProcess(kind, name, cmd, args, { dir, env, cwd } = {}) {
  dir = dir || fs.mkdtempSync(path.join(tmpRoot, `${kind}-`));
  const logFile = path.join(dir, `${kind}.log`);
  const out = fs.openSync(logFile, 'a');
  fs.writeSync(out, `# ${cmd} ${args.join(' ')}\n`);
  const child = spawn(cmd, args, { stdio: ['ignore', out, out], env: env || process.env, cwd: cwd || dir });
  fs.closeSync(out);
  const p = track(kind, name, child, logFile);
  return {
    proc: p, dir, logFile,
    get pid() { return child.pid; },
    log: () => readLog(logFile, 1e9),
    stop: () => stopProc(p),
    kill: async () => {
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
      await p.exited;
    },
  };
}

// A fresh temporary directory under this file's (kept with the logs when a test fails).
export function tempDir(prefix) {
  return fs.mkdtempSync(path.join(tmpRoot, prefix));
}

// ---------------------------------------------------------------------------------------
// redis-server

// Starts a private redis-server on a free port (or `port`); with `unixSocket` it also
// listens on a unix socket in its directory (redis.socketPath, redis.unixUrl). `dir` reuses
// a directory (redis.dir of an earlier instance: a restart finds its dump.rdb there);
// `args`: more redis-server flags (--replicaof, --requirepass, ...); `password`: the one
// the readiness check authenticates with.
export async function startRedis({ port, unixSocket = false, dir, args = [], password } = {}) {
  port = port || (await freePort());
  dir = dir || fs.mkdtempSync(path.join(tmpRoot, 'redis-'));
  const logFile = path.join(dir, 'redis.log');
  const socketPath = path.join(dir, 'redis.sock');
  const out = fs.openSync(logFile, 'a');
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', dir, '--protected-mode', 'no', '--daemonize', 'no',
    ...(unixSocket ? ['--unixsocket', socketPath, '--unixsocketperm', '700'] : []),
    ...args.map(String),
  ], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const p = track('redis-server', `:${port}`, child, logFile);
  const redis = {
    port,
    dir,
    url: `redis://127.0.0.1:${port}`,
    socketPath: unixSocket ? socketPath : undefined,
    unixUrl: unixSocket ? `unix://${socketPath}` : undefined,
    proc: p,
    get pid() { return child.pid; },
    stop: () => stopProc(p),
    // SIGSTOP / SIGCONT: a Redis that hangs (connections open, no answers).
    freeze: () => { p.frozen = true; process.kill(child.pid, 'SIGSTOP'); },
    thaw: () => { process.kill(child.pid, 'SIGCONT'); p.frozen = false; },
    // SIGKILL: the way a crashed Redis goes away (no goodbye on its connections).
    kill: async () => {
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
      await p.exited;
    },
  };
  await waitFor(async () => {
    if (p.exitInfo) throw new Error(`redis-server exited: ${readLog(logFile)}`);
    const c = await RedisClient.connect(port).catch(() => null);
    if (!c) return false;
    try {
      if (password) await c.command('AUTH', password);
      return (await c.command('PING')) === 'PONG';
    } finally { c.close(); }
  }, { timeout: 10000, what: `redis-server on port ${port}` });
  return redis;
}

// ---------------------------------------------------------------------------------------
// rt-server

// Starts rt-server. Options: redisUrl (required), pollTimeout (seconds, default 2),
// token (default TOKEN, written to a file), tokenViaEnv, args (extra flags), env, ready
// ('healthz': resolves once /healthz answers 200; 'listening': once it answers at all).
export async function startServer({
  redisUrl, pollTimeout = 2, token = TOKEN, tokenViaEnv = false, args = [], env = {}, port, ready = 'healthz',
} = {}) {
  if (!fs.existsSync(RT_SERVER_BIN)) {
    throw new Error(`rt-server binary not found at ${RT_SERVER_BIN} (set RT_SERVER_BIN, run make server)`);
  }
  port = port || (await freePort());
  const dir = fs.mkdtempSync(path.join(tmpRoot, 'rt-'));
  const logFile = path.join(dir, 'rt-server.log');
  const argv = ['--listen', `127.0.0.1:${port}`, '--redis', redisUrl, '--poll-timeout', String(pollTimeout)];
  const childEnv = { ...process.env, ...env };
  delete childEnv.RT_PUBLISH_TOKEN;
  if (token != null) {
    if (tokenViaEnv) {
      childEnv.RT_PUBLISH_TOKEN = token;
    } else {
      const tokenFile = path.join(dir, 'token');
      fs.writeFileSync(tokenFile, token, { mode: 0o600 });
      argv.push('--publish-token-file', tokenFile);
    }
  }
  argv.push(...EXTRA_SERVER_ARGS, ...args);
  const out = fs.openSync(logFile, 'a');
  fs.writeSync(out, `# ${RT_SERVER_BIN} ${argv.join(' ')}\n`);
  const child = spawn(RT_SERVER_BIN, argv, { stdio: ['ignore', out, out], env: childEnv, cwd: REPO_ROOT });
  fs.closeSync(out);
  const p = track('rt-server', `:${port}`, child, logFile);
  const base = `http://127.0.0.1:${port}`;
  const server = {
    port, base, proc: p, logFile, argv,
    get pid() { return child.pid; },
    log: () => readLog(logFile, 1e9),
    // SIGTERM and wait; returns { code, signal, forced, sanitizer } (sanitizer: bool).
    stop: async () => {
      const info = await stopProc(p);
      p.checked = true;
      return { ...info, sanitizer: sanitizerReportIn(readLog(logFile, 1e9)) };
    },
  };
  await waitFor(async () => {
    if (p.exitInfo) {
      throw new Error(`rt-server exited during start-up ${JSON.stringify(p.exitInfo)}:\n${readLog(logFile)}`);
    }
    const r = await fetch(base + (ready === 'healthz' ? '/healthz' : '/metrics'), { signal: AbortSignal.timeout(1000) })
      .catch(() => null);
    return r && r.status === 200 && (await r.arrayBuffer(), true);
  }, { timeout: START_DEADLINE_MS, interval: 50, what: `rt-server ${ready === 'healthz' ? '/healthz' : '/metrics'} 200 on port ${port}` }).catch((e) => {
    if (p.exitInfo) throw e;
    throw new Error(`${e.message}\n${readLog(logFile)}`);
  });
  return server;
}

// Starts a fresh redis-server and an rt-server on it; `stop()` stops both.
export async function startStack(serverOpts = {}) {
  const redis = await startRedis();
  const server = await startServer({ redisUrl: redis.url, ...serverOpts });
  const client = await RedisClient.connect(redis.port);
  return {
    redis, server, client, base: server.base,
    async stop() {
      client.close();
      const s = await server.stop();
      await redis.stop();
      return s;
    },
  };
}

// Asserts that `server` exits with status 0 within the deadline after SIGTERM and that its
// log has no sanitizer report. Used by each file's last test.
export async function assertCleanShutdown(server) {
  const res = await server.stop();
  const problems = [];
  if (res.forced) problems.push(`did not exit within ${STOP_DEADLINE_MS} ms of SIGTERM (SIGKILLed)`);
  else if (res.code !== 0) problems.push(`exit after SIGTERM: code ${res.code}, signal ${res.signal} (want code 0)`);
  if (res.sanitizer) problems.push('sanitizer report in stderr');
  if (problems.length) {
    throw new Error(`rt-server ${server.port}: ${problems.join('; ')}\n${readLog(server.logFile)}`);
  }
}

// Runs `fn(server)` with an extra rt-server, then checks its clean shutdown. A failure of
// `fn` wins over a shutdown problem (both are reported).
export async function withServer(opts, fn) {
  const server = await startServer(opts);
  let failure = null;
  try {
    await fn(server);
  } catch (err) {
    failure = err;
  }
  try {
    await assertCleanShutdown(server);
  } catch (err) {
    if (!failure) throw err;
    try { failure.message += `\n(also: ${err.message.split('\n')[0]})`; } catch { /* read-only */ }
  }
  if (failure) throw failure;
}

// Wrapper around node:test's `test`: on failure appends the logs of this file's servers.
export function test(name, opts, fn) {
  if (typeof opts === 'function') { fn = opts; opts = {}; }
  const timeout = opts.timeout ?? 60000;
  return nodeTest(name, { ...opts, timeout }, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      keepTmp = true;
      const logs = logsForFailure();
      if (err && typeof err === 'object') {
        try { err.message = `${err.message}\n${logs}`; } catch { /* read-only */ }
      }
      throw err;
    }
  });
}

// At the end of the file: stop whatever is still running (also after failures) and fail
// the file if any rt-server log holds a sanitizer report.
after(async () => {
  const bad = [];
  for (const p of procs) {
    if (!p.exitInfo) await stopProc(p);
    if (p.kind === 'rt-server' && sanitizerReportIn(readLog(p.logFile, 1e9))) {
      bad.push(`${p.name}: ${p.logFile}\n${readLog(p.logFile)}`);
    }
  }
  if (bad.length) keepTmp = true;
  if (!keepTmp && !process.env.RT_KEEP_LOGS) fs.rmSync(tmpRoot, { recursive: true, force: true });
  else process.stderr.write(`[harness] logs kept in ${tmpRoot}\n`);
  if (bad.length) throw new Error(`sanitizer report(s) in rt-server stderr:\n${bad.join('\n')}`);
});

// ---------------------------------------------------------------------------------------
// HTTP helpers (global fetch)

// GET /rt for `pairs` = [[channel, lastId], ...]; resolves { status, headers, body, json, ms }.
export async function poll(base, pairs, { signal, extra = '' } = {}) {
  const qs = pairs.map(([c, m]) => `c=${encodeURIComponent(c)}&m=${m}`).join('&');
  return get(base, `/rt?${qs}${extra}`, { signal });
}

export async function get(base, pathAndQuery, { signal, headers } = {}) {
  return request(base, pathAndQuery, { method: 'GET', signal, headers });
}

export async function request(base, pathAndQuery, { method = 'GET', body, headers = {}, signal } = {}) {
  const t0 = Date.now();
  const r = await fetch(base + pathAndQuery, { method, body, headers, signal });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, headers: r.headers, body: text, json, ms: Date.now() - t0 };
}

// POST /publish?c=channel[&backlog=N]; `body` is sent as is (a string) — pass JSON text.
export async function publish(base, channel, body, { backlog, token = TOKEN, headers = {} } = {}) {
  let q = `/publish?c=${encodeURIComponent(channel)}`;
  if (backlog !== undefined) q += `&backlog=${backlog}`;
  const h = { 'Content-Type': 'application/json', ...headers };
  if (token !== null) h.Authorization = `Bearer ${token}`;
  return request(base, q, { method: 'POST', body, headers: h });
}

// Publishes and asserts 200 {"id":N}; returns N.
export async function publishOk(base, channel, payload, opts = {}) {
  const r = await publish(base, channel, JSON.stringify(payload), opts);
  if (r.status !== 200 || !r.json || !Number.isInteger(r.json.id)) {
    throw new Error(`publish to ${channel} failed: ${r.status} ${r.body}`);
  }
  return r.json.id;
}

// ---------------------------------------------------------------------------------------
// Metrics (Prometheus text format)

// The closing check of every file: after all it went through, the server still answers
// /healthz and serves a fresh publish to a fresh poll.
export async function assertStillServes(base) {
  const h = await fetch(base + '/healthz');
  assert.equal(h.status, 200, '/healthz');
  const c = uniqueChannel();
  const id = await publishOk(base, c, 'final');
  const r = await poll(base, [[c, 0]]);
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [{ id, prev: 0, payload: 'final' }] } });
}

// ---------------------------------------------------------------------------------------
// Version-2 ids and messages (PROTOCOL.md section 2)

// A message as the server relays it: {"id","prev","payload"}.
export const msg = (id, prev, payload) => ({ id, prev, payload });

// The messages of an unbroken chain: ids[i] with payloads[i], each prev the id before it
// (the first one's prev is `firstPrev`, 0 for a channel's first message).
export function chain(ids, payloads, firstPrev = 0) {
  return ids.map((id, i) => ({ id, prev: i ? ids[i - 1] : firstPrev, payload: payloads[i] }));
}

// An id that the version-2 publish script made: max(N + 1, Redis TIME in µs), so at least
// the time of the test run in µs, and exact in a JavaScript number.
export function assertTimeId(id, what = 'id') {
  assert.ok(Number.isSafeInteger(id) && id >= 1.7e15, `${what} ${id} is an id from Redis TIME in µs`);
}

// Asserts that `msgs` form an unbroken chain from `from`: the first one's prev is `from`,
// each later one's prev the id before it, ids ascending.
export function assertChain(msgs, from, what = 'chain') {
  let last = from;
  for (const m of msgs) {
    assert.equal(m.prev, last, `${what}: message ${m.id} has prev ${m.prev}, the id before it is ${last}`);
    assert.ok(m.id > last, `${what}: ids ascending (${m.id} after ${last})`);
    last = m.id;
  }
  return last;
}

// The version-1 publish script (INCR ids, no prev, trim by score), as version-1 backends
// still run it: the tests that check version-1 data keep working use it.
export const PUBLISH_LUA_V1 = `
local backlog = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local id = redis.call('INCR', KEYS[1])
local msg = '{"id":' .. string.format('%d', id) .. ',"payload":' .. ARGV[1] .. '}'
redis.call('ZADD', KEYS[2], id, msg)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%d', id - backlog))
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
redis.call('PUBLISH', KEYS[3], msg)
return id
`;

export async function metricsText(base) {
  const r = await fetch(base + '/metrics');
  const text = await r.text();
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${text}`);
  return text;
}

// Sum of every sample of metric `name` (all label sets) whose labels match `labelFilter`
// (an object of label=value); undefined when the metric has no sample.
export function metricValue(text, name, labelFilter = {}) {
  let sum;
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const labels = {};
    if (m[3]) for (const lm of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[lm[1]] = lm[2];
    if (Object.entries(labelFilter).every(([k, v]) => labels[k] === String(v))) {
      sum = (sum ?? 0) + Number(m[4]);
    }
  }
  return sum;
}

// Name of the gauge counting held polls: rt_held_polls, or else the first gauge whose name
// contains "held".
export function heldGaugeName(text) {
  if (/^rt_held_polls[ {]/m.test(text)) return 'rt_held_polls';
  for (const m of text.matchAll(/^# TYPE (\S*held\S*) gauge/gm)) return m[1];
  throw new Error(`no gauge for held polls in /metrics:\n${text}`);
}

export async function heldPolls(base) {
  const text = await metricsText(base);
  return metricValue(text, heldGaugeName(text)) ?? 0;
}

// Waits until the held-polls gauge satisfies `pred` (e.g. n => n >= 3).
export async function waitHeld(base, pred, { timeout = 5000, what } = {}) {
  let last;
  await waitFor(async () => pred((last = await heldPolls(base))),
    { timeout, interval: 15, what: what || `held polls gauge (last ${last})` });
  return last;
}

// Starts a poll that the server must hold (nothing new) and waits until it is held.
// Returns { response }: wrapped, since returning the promise itself would wait for the answer.
export async function heldPoll(base, pairs) {
  const n0 = await heldPolls(base);
  const response = poll(base, pairs);
  response.catch(() => {}); // awaited by the caller; avoid an unhandled rejection meanwhile
  await waitHeld(base, (n) => n >= n0 + 1, { what: 'the poll to be held' });
  return { response };
}

// ---------------------------------------------------------------------------------------
// A tiny RESP client (one connection, pipelined commands answered in order).

export class RedisClient {
  static connect(port, host = '127.0.0.1') {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection({ port, host });
      sock.once('connect', () => { sock.removeListener('error', reject); resolve(new RedisClient(sock)); });
      sock.once('error', reject);
    });
  }

  constructor(sock) {
    this.sock = sock;
    this.buf = Buffer.alloc(0);
    this.pending = [];
    this.closed = false;
    sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.#drain(); });
    const fail = (err) => {
      this.closed = true;
      for (const p of this.pending.splice(0)) p.reject(err || new Error('redis connection closed'));
    };
    sock.on('error', fail);
    sock.on('close', () => fail());
  }

  command(...args) {
    if (this.closed) return Promise.reject(new Error('redis connection closed'));
    let out = `*${args.length}\r\n`;
    const parts = [];
    for (const a of args) {
      const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.sock.write(Buffer.concat([Buffer.from(out), ...parts]));
    });
  }

  close() {
    this.closed = true;
    this.sock.destroy();
  }

  #drain() {
    while (this.pending.length) {
      const r = parseResp(this.buf, 0);
      if (!r) return;
      this.buf = this.buf.subarray(r.end);
      const p = this.pending.shift();
      if (r.value instanceof RedisError) p.reject(r.value); else p.resolve(r.value);
    }
  }
}

export class RedisError extends Error {}

function parseResp(buf, pos) {
  const nl = buf.indexOf('\r\n', pos);
  if (nl < 0) return null;
  const type = String.fromCharCode(buf[pos]);
  const line = buf.toString('utf8', pos + 1, nl);
  const next = nl + 2;
  switch (type) {
    case '+': return { value: line, end: next };
    case '-': return { value: new RedisError(line), end: next };
    case ':': return { value: Number(line), end: next };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: next };
      if (buf.length < next + len + 2) return null;
      return { value: buf.toString('utf8', next, next + len), end: next + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: next };
      const arr = [];
      let p = next;
      for (let i = 0; i < n; i++) {
        const r = parseResp(buf, p);
        if (!r) return null;
        arr.push(r.value);
        p = r.end;
      }
      return { value: arr, end: p };
    }
    default: throw new Error(`bad RESP type byte ${JSON.stringify(type)}`);
  }
}

// Seed key names for channel C (prefix default "channel:").
export function keys(channel, prefix = 'channel:') {
  return {
    id: `${prefix}{${channel}}:msg_id`,
    backlog: `${prefix}{${channel}}:msg_backlog`,
    pubsub: `${prefix}{${channel}}:pubsub`,
  };
}

// Runs redis-cli with `args`; resolves { code, stdout, stderr }.
export function redisCli(port, args) {
  return new Promise((resolve, reject) => {
    const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args]);
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

// ---------------------------------------------------------------------------------------
// Raw-socket HTTP: for what fetch cannot do (malformed requests, huge URLs, abrupt closes,
// many held connections).

// Opens a connection, writes `data`, and resolves with the parsed response once it is
// complete (Content-Length or chunked), or at close. Resolves { status, headers, body,
// json, raw, closed } or { status: null, closed: true, raw } when the server closed without
// a response. Rejects after `timeout` ms.
export function rawHttp(port, data, { timeout = 10000, keepOpen = false } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ port, host: '127.0.0.1' });
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (err, val) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!keepOpen || err) sock.destroy();
      if (err) reject(err); else resolve(val);
    };
    const timer = setTimeout(() => finish(new Error(`raw HTTP: no complete response within ${timeout} ms; got ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`)), timeout);
    sock.on('connect', () => sock.write(data));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      const r = parseHttpResponse(buf, false);
      if (r) finish(null, { ...r, socket: keepOpen ? sock : undefined, closed: false });
    });
    sock.on('error', (err) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return; // reported at close
      finish(err);
    });
    sock.on('close', () => {
      const r = parseHttpResponse(buf, true);
      finish(null, r ? { ...r, closed: true } : { status: null, closed: true, raw: buf.toString('latin1') });
    });
  });
}

function parseHttpResponse(buf, atEof) {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const head = buf.toString('latin1', 0, end).split('\r\n');
  const sm = /^HTTP\/1\.[01] (\d{3})/.exec(head[0]);
  if (!sm) return null;
  const headers = {};
  for (const h of head.slice(1)) {
    const i = h.indexOf(':');
    if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  let bodyBuf = buf.subarray(end + 4);
  if (headers['content-length'] !== undefined) {
    const len = Number(headers['content-length']);
    if (bodyBuf.length < len) return null;
    bodyBuf = bodyBuf.subarray(0, len);
  } else if (/chunked/i.test(headers['transfer-encoding'] || '')) {
    const chunks = [];
    let p = 0;
    for (;;) {
      const nl = bodyBuf.indexOf('\r\n', p);
      if (nl < 0) return null;
      const n = parseInt(bodyBuf.toString('latin1', p, nl), 16);
      if (Number.isNaN(n)) return null;
      if (n === 0) break;
      if (bodyBuf.length < nl + 2 + n + 2) return null;
      chunks.push(bodyBuf.subarray(nl + 2, nl + 2 + n));
      p = nl + 2 + n + 2;
    }
    bodyBuf = Buffer.concat(chunks);
  } else if (!atEof) {
    return null;
  }
  const body = bodyBuf.toString('utf8');
  let json;
  try { json = JSON.parse(body); } catch { json = undefined; }
  return { status: Number(sm[1]), headers, body, json, raw: buf.toString('latin1', 0, end) };
}

// Opens a connection and sends a GET, without waiting for an answer; resolves with the
// socket once written (for held polls that the test then destroys).
export function openRawGet(port, pathAndQuery) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ port, host: '127.0.0.1' });
    sock.on('error', () => {});
    sock.once('connect', () => {
      sock.write(`GET ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`, () => resolve(sock));
    });
    sock.once('error', reject);
  });
}
