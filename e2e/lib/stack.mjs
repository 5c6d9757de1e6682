// The processes an end-to-end test runs against, each owned by the test that
// started it: a private redis-server, rt-server and the demo backend, on free
// ports of 127.0.0.1, stopped by their PIDs. A test may stop and start any of
// them again (same port) to simulate a server-side drop.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
export const RT_SERVER = process.env.RT_SERVER_BIN ?? path.join(repoRoot, 'build', 'rt-server');
export const CLIENT_DIR = process.env.RT_CLIENT_DIR ?? path.join(repoRoot, 'build', 'client');

/** Resolves with a port that was free a moment ago (the OS picks it). */
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

// Children still running when this process exits (a crashed or killed test
// worker) are killed by PID here, so no redis-server or rt-server outlives a run.
const running = new Set();
process.on('exit', () => { for (const child of running) child.kill('SIGKILL'); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` (async, truthy = ready) every 50 ms for up to `ms`. */
async function waitUntil(what, ms, check) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (err) { last = err; }
    await sleep(50);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

function redisPing(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    sock.setTimeout(500, () => { sock.destroy(); resolve(false); });
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => { buf += d; if (buf.includes('\r\n')) { sock.destroy(); resolve(buf.startsWith('+PONG')); } });
    sock.on('error', () => resolve(false));
  });
}

async function httpOk(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
  await res.arrayBuffer();
  return res.ok;
}

/**
 * One child process with a fixed command line, which can be stopped (SIGTERM,
 * then SIGKILL after 5 s) and started again. Output goes to a log file.
 */
class Proc {
  constructor(name, cmd, args, { logFile, env, ready }) {
    Object.assign(this, { name, cmd, args, logFile, env, ready });
    this.child = null;
  }

  async start() {
    if (this.child) throw new Error(`${this.name} already running`);
    const out = fs.openSync(this.logFile, 'a');
    // In the repository's root: rt-server finds its Lua scripts in server/lua from there.
    const child = spawn(this.cmd, this.args, { cwd: repoRoot, stdio: ['ignore', out, out], env: { ...process.env, ...this.env } });
    fs.closeSync(out);
    this.child = child;
    running.add(child);
    this.exited = new Promise((resolve) => child.once('exit', (code, sig) => { running.delete(child); resolve({ code, sig }); }));
    let died = null;
    this.exited.then((r) => { died = r; });
    try {
      await waitUntil(`${this.name} to be ready`, 15000, async () => {
        if (died) throw new Error(`${this.name} exited (${died.code ?? died.sig}); log: ${this.logFile}`);
        return this.ready();
      });
    } catch (err) {
      await this.stop();
      throw new Error(`${err.message}\n--- ${this.logFile} ---\n${tail(this.logFile)}`);
    }
  }

  /** Stops the process by its PID; resolves once it has exited. */
  async stop() {
    const child = this.child;
    if (!child) return;
    this.child = null;
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timer);
    }
  }

  async restart() {
    await this.stop();
    await this.start();
  }
}

function tail(file) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-30).join('\n');
  } catch { return '(no log)'; }
}

/**
 * Starts redis-server, rt-server and the demo backend. Options:
 *   commentBacklog  rt backlog of thread channels (demo backend)
 *   pollTimeout     rt-server's long-poll timeout, seconds
 *   items           pictures on the front page
 *   redisPersist    keep Redis's data over a restart (append-only file)
 * Resolves with {redis, rt, backend, baseUrl, rtUrl, dir, stop()}.
 */
export async function startStack({ commentBacklog = 100, pollTimeout = 25, items = 600, redisPersist = false, name = 'stack' } = {}) {
  if (!fs.existsSync(RT_SERVER)) throw new Error(`${RT_SERVER} is missing: run make server`);
  if (!fs.existsSync(path.join(CLIENT_DIR, 'rt-client.mjs'))) throw new Error(`${CLIENT_DIR}/rt-client.mjs is missing: run make client`);
  const dir = fs.mkdtempSync(path.join(process.env.RT_E2E_TMP ?? os.tmpdir(), `rt-e2e-${name.replace(/[^a-z0-9]+/gi, '-').slice(0, 40)}-`));
  const [redisPort, rtPort, webPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const token = `e2e-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
  const tokenFile = path.join(dir, 'publish-token');
  fs.writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const baseUrl = `http://127.0.0.1:${webPort}`;
  const rtUrl = `http://127.0.0.1:${rtPort}`;

  // Without redisPersist, restarting Redis loses every channel: every last-seen id
  // of the pages is then ahead of Redis. With it, an append-only file keeps them.
  const persist = redisPersist ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no'];
  const redis = new Proc('redis-server', 'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', ...persist,
      '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning'],
    { logFile: path.join(dir, 'redis.log'), ready: () => redisPing(redisPort) });
  const rt = new Proc('rt-server', RT_SERVER,
    ['--listen', `127.0.0.1:${rtPort}`, '--redis', `redis://127.0.0.1:${redisPort}`,
      '--publish-token-file', tokenFile, '--cors-origin', baseUrl, '--poll-timeout', String(pollTimeout),
      ...(process.env.RT_LUA_DIR ? ['--lua-dir', process.env.RT_LUA_DIR] : [])],
    { logFile: path.join(dir, 'rt-server.log'), ready: () => httpOk(`${rtUrl}/healthz`) });
  const backend = new Proc('demo backend', process.execPath,
    [path.join(repoRoot, 'web', 'backend', 'server.mjs'), '--port', String(webPort), '--rt-url', rtUrl,
      '--token-file', tokenFile, '--client-dir', CLIENT_DIR, '--items', String(items),
      '--comment-backlog', String(commentBacklog)],
    { logFile: path.join(dir, 'backend.log'), ready: () => httpOk(`${baseUrl}/api/config`) });

  const started = [];
  const stack = {
    redis, rt, backend, baseUrl, rtUrl, dir, token,
    async stop() {
      for (const p of [backend, rt, redis]) await p.stop();
    },
    /** Waits until rt-server reports Redis reachable again (after a restart). */
    async rtHealthy(ms = 15000) {
      await waitUntil('rt-server /healthz', ms, () => httpOk(`${rtUrl}/healthz`));
    },
  };
  try {
    for (const p of [redis, rt, backend]) { await p.start(); started.push(p); }
  } catch (err) {
    for (const p of started.reverse()) await p.stop();
    throw err;
  }
  return stack;
}
