// Production-topology pieces for the tests of tests/topology/: nginx running
// deploy/nginx.conf in front of several rt-servers, Redis replicas and Sentinels, and the
// load: pollers that check every message's chain (PROTOCOL.md, version 2) and publishers
// that record what was acknowledged. Every process is started through the integration
// harness (free loopback ports, logs shown on failure, stopped by PID).

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import {
  REPO_ROOT, TOKEN, freePort, sleep, startProcess, startRedis, tempDir, waitFor, RedisClient,
} from '../../integration/lib/harness.mjs';

export const DEPLOY_NGINX = path.join(REPO_ROOT, 'deploy/nginx.conf');
export const DEPLOY_UNIT = path.join(REPO_ROOT, 'deploy/rt-server.service');

// ---------------------------------------------------------------------------------------
// nginx

// deploy/nginx.conf made runnable here: the given listen port and upstream rt-servers
// (the parameters of the file's first `server` line kept), file paths under `dir`, no user
// switch, one worker with limits under this machine's. Every other line is the file's own:
// each substitution must match, so a change of the file's shape fails the test loudly.
export function nginxConfigFrom(text, { port, upstreams, dir }) {
  const sub = (re, to, what) => {
    if (!re.test(text)) throw new Error(`deploy/nginx.conf: no ${what} to replace (${re})`);
    text = text.replace(re, to);
  };
  sub(/^user [^;]*;\s*$/m, '', 'user line');
  sub(/^worker_processes [^;]*;/m, 'worker_processes 1;', 'worker_processes');
  sub(/^worker_rlimit_nofile [^;]*;/m, 'worker_rlimit_nofile 8192;', 'worker_rlimit_nofile');
  sub(/^(\s*)worker_connections [^;]*;/m, '$1worker_connections 4000;', 'worker_connections');
  sub(/^pid [^;]*;/m, `pid ${dir}/nginx.pid;`, 'pid');
  sub(/^error_log [^;]*;/m, `error_log ${dir}/error.log info;`, 'error_log');
  sub(/^(\s*)access_log [^;]*;/m, `$1access_log ${dir}/access.log;`, 'access_log');
  sub(/^(\s*)listen 80;/m, `$1listen 127.0.0.1:${port};`, 'listen 80');
  const block = /(upstream rt_servers \{[^}]*?)((?:^\s*server [^;]*;[^\n]*\n)+)/m;
  const m = block.exec(text);
  if (!m) throw new Error('deploy/nginx.conf: no server lines in upstream rt_servers');
  const first = /^(\s*)server (\S+)([^;]*);/m.exec(m[2]);
  const lines = upstreams.map((p) => `${first[1]}server 127.0.0.1:${p}${first[3]};\n`).join('');
  text = text.replace(block, `$1${lines}`);
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `  ${t}_temp_path ${dir}/tmp/${t};`).join('\n');
  sub(/^http \{\n/m, `http {\n${temps}\n`, 'http block');
  return text;
}

// Starts nginx (Debian's) with deploy/nginx.conf in front of the rt-servers on `upstreams`
// (ports). Resolves once it answers; { port, base, dir, conf, pid, stop(), kill() }.
export async function startNginx({ upstreams, port } = {}) {
  port = port || (await freePort());
  const dir = tempDir('nginx-');
  for (const t of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) fs.mkdirSync(`${dir}/tmp/${t}`, { recursive: true });
  const conf = nginxConfigFrom(fs.readFileSync(DEPLOY_NGINX, 'utf8'), { port, upstreams, dir });
  fs.writeFileSync(`${dir}/nginx.conf`, conf);
  const p = startProcess('nginx', `:${port}`, 'nginx',
    ['-p', dir, '-e', `${dir}/error.log`, '-c', `${dir}/nginx.conf`, '-g', 'daemon off;'], { dir });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(async () => {
    if (p.proc.exitInfo) throw new Error(`nginx exited: ${p.log()}\n${readText(`${dir}/error.log`)}`);
    const r = await fetch(base + '/nothing-here', { signal: AbortSignal.timeout(1000) }).catch(() => null);
    return r && r.status === 404 && (await r.arrayBuffer(), true);
  }, { timeout: 10000, what: `nginx on port ${port}` });
  return { ...p, port, base, conf, errorLog: () => readText(`${dir}/error.log`) };
}

function readText(file) {
  try { return fs.readFileSync(file, 'utf8'); } catch { return ''; }
}

// ---------------------------------------------------------------------------------------
// Redis replication and Sentinel

// A master and `replicas` replicas on free ports (all with `password` when given).
export async function startReplicated({ replicas = 2, password } = {}) {
  const auth = password ? ['--requirepass', password, '--masterauth', password] : [];
  // Replicas announce themselves by this address; diskless sync keeps start-up quick.
  const common = ['--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0', ...auth];
  const master = await startRedis({ args: common, password });
  const reps = [];
  for (let i = 0; i < replicas; i++) {
    reps.push(await startRedis({ args: [...common, '--replicaof', '127.0.0.1', String(master.port)], password }));
  }
  for (const r of reps) {
    await waitFor(async () => /master_link_status:up/.test(await info(r.port, 'replication', password)),
      { timeout: 10000, what: `replica ${r.port} in sync` });
  }
  return { master, replicas: reps, nodes: [master, ...reps], password };
}

// Runs one command on a fresh connection (AUTH first when `password`).
export async function redisCommand(port, password, ...args) {
  const c = await RedisClient.connect(port);
  try {
    if (password) await c.command('AUTH', password);
    return await c.command(...args);
  } finally {
    c.close();
  }
}

export async function info(port, section, password) {
  return String(await redisCommand(port, password, 'INFO', section));
}

// Starts `count` sentinels watching `masterPort` as MASTERNAME (quorum 2, down after 1 s).
// With `password`, the sentinels ask clients for it (requirepass) and use it on the data
// nodes (auth-pass). Resolves once every sentinel knows the replicas and the other
// sentinels (a failover before that could not elect a leader).
export async function startSentinels({ count = 3, masterPort, name = 'rtmaster', password, replicas = 2,
  downAfterMs = 1000, failoverTimeoutMs = 10000 } = {}) {
  const sentinels = [];
  for (let i = 0; i < count; i++) {
    const port = await freePort();
    const dir = tempDir('sentinel-');
    const conf = [
      `port ${port}`,
      'bind 127.0.0.1',
      'protected-mode no',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
      `sentinel failover-timeout ${name} ${failoverTimeoutMs}`,
      `sentinel parallel-syncs ${name} 1`,
      ...(password ? [`sentinel auth-pass ${name} ${password}`, `requirepass ${password}`] : []),
      '',
    ].join('\n');
    fs.writeFileSync(`${dir}/sentinel.conf`, conf);
    const p = startProcess('redis-sentinel', `:${port}`, 'redis-server', [`${dir}/sentinel.conf`, '--sentinel'], { dir });
    sentinels.push({ ...p, port });
  }
  for (const s of sentinels) {
    await waitFor(async () => {
      if (s.proc.exitInfo) throw new Error(`sentinel exited: ${s.log()}`);
      const m = await redisCommand(s.port, password, 'SENTINEL', 'master', name).catch(() => null);
      if (!Array.isArray(m)) return false;
      const f = {};
      for (let i = 0; i + 1 < m.length; i += 2) f[m[i]] = m[i + 1];
      return Number(f['num-slaves']) >= replicas && Number(f['num-other-sentinels']) >= count - 1;
    }, { timeout: 20000, interval: 100, what: `sentinel ${s.port} sees ${replicas} replicas and ${count - 1} sentinels` });
  }
  return { sentinels, name, password, url: sentinelUrl(sentinels, name, password) };
}

export function sentinelUrl(sentinels, name, password, { db } = {}) {
  const auth = password ? `:${encodeURIComponent(password)}@` : '';
  return `redis+sentinel://${auth}${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${name}${db ? `?db=${db}` : ''}`;
}

// Cuts the replication of `rep` (from startReplicated) for good: the replicas are frozen
// (SIGSTOP), so that they cannot reconnect, and their links are closed on the master
// (CLIENT KILL TYPE replica). Freezing alone loses nothing: a stopped process's sockets
// still receive, and a thawed replica reads the stream the kernel kept for it. From the cut
// on, the master takes writes that no replica gets, as long as the replicas stay frozen
// until the master is gone (thaw them after killing it). Resolves with the newest id of
// each of `channels` on the master, read on the same connection right after the cut: an
// upper bound of what any replica has, so a message with a higher id exists on the master
// only. Throws (replicas still frozen: thaw them) when not every link was closed.
export async function cutReplication(rep, channels) {
  for (const r of rep.replicas) r.freeze();
  const c = await RedisClient.connect(rep.master.port);
  try {
    if (rep.password) await c.command('AUTH', rep.password);
    const closed = await c.command('CLIENT', 'KILL', 'TYPE', 'replica');
    if (closed !== rep.replicas.length) {
      throw new Error(`CLIENT KILL TYPE replica closed ${closed} replication links, not ${rep.replicas.length}`);
    }
    const ids = await Promise.all(channels.map((ch) => c.command('GET', channelKey(ch, 'msg_id'))));
    return new Map(channels.map((ch, i) => [ch, Number(ids[i] ?? 0)]));
  } finally {
    c.close();
  }
}

// The master's port by the sentinels' word (the first that answers).
export async function sentinelMaster(sentinels, name, password) {
  for (const s of sentinels) {
    const r = await redisCommand(s.port, password, 'SENTINEL', 'get-master-addr-by-name', name).catch(() => null);
    if (Array.isArray(r)) return Number(r[1]);
  }
  return null;
}

// ---------------------------------------------------------------------------------------
// Load: pollers that check the chain, publishers that record what was acknowledged

// Retry-After in ms (whole seconds per RFC 9110), or `dflt` when absent.
function retryAfterMs(headers, dflt) {
  const v = Number(headers.get('retry-after'));
  return Number.isFinite(v) && v >= 0 ? v * 1000 : dflt;
}

// A client of `channels` through `base`, as PROTOCOL.md section 6 describes one: it sends
// back the newest id it got, checks that every message names its predecessor (`prev`; a
// message without it counts as prev = id - 1, as version 1 servers send them), follows
// resets, and backs off after a 5xx or a network error (Retry-After when given). It
// records every event per channel and every breach of the contract in `violations`.
export class Poller {
  constructor(base, channels, { name = 'poller', pollTimeoutMs = 2000, maxBackoffMs = 1000 } = {}) {
    this.base = base;
    this.name = name;
    this.channels = channels;
    this.pollTimeoutMs = pollTimeoutMs;
    this.maxBackoffMs = maxBackoffMs;
    this.last = new Map(channels.map((c) => [c, 0]));
    this.history = new Map(channels.map((c) => [c, []]));  // {id, prev} | {reset, from, id, reason}
    this.violations = [];
    this.polls = 0;
    this.statuses = {};
    this.networkErrors = 0;
    this.longest = 0;          // ms of the longest poll
    this.stuck = 0;            // polls that hit the client-side deadline
    this.stopped = false;
  }

  start() {
    this.done = this.#run();
    return this;
  }

  async stop() {
    this.stopped = true;
    this.ctrl?.abort();
    await this.done;
  }

  async #run() {
    let backoff = 50;
    while (!this.stopped) {
      const qs = this.channels.map((c) => `c=${encodeURIComponent(c)}&m=${this.last.get(c)}`).join('&');
      this.ctrl = new AbortController();
      const deadline = setTimeout(() => { this.deadlineHit = true; this.ctrl.abort(); }, this.pollTimeoutMs + 5000);
      this.deadlineHit = false;
      const t0 = Date.now();
      let r, text;
      try {
        r = await fetch(`${this.base}/rt?${qs}`, { signal: this.ctrl.signal });
        text = await r.text();
      } catch (e) {
        clearTimeout(deadline);
        if (this.stopped) return;
        if (this.deadlineHit) this.stuck++;
        this.networkErrors++;
        await sleep(Math.min(backoff, this.maxBackoffMs) * (0.5 + Math.random() / 2));
        backoff *= 2;
        continue;
      }
      clearTimeout(deadline);
      const ms = Date.now() - t0;
      this.longest = Math.max(this.longest, ms);
      this.polls++;
      this.statuses[r.status] = (this.statuses[r.status] || 0) + 1;
      if (r.status === 200) {
        backoff = 50;
        let body;
        try { body = JSON.parse(text); } catch { this.violations.push(`${this.name}: 200 with a body that is not JSON: ${text.slice(0, 200)}`); continue; }
        this.#apply(body);
        continue;
      }
      if (r.status >= 500) {
        await sleep(Math.min(retryAfterMs(r.headers, backoff), this.maxBackoffMs) * (0.5 + Math.random() / 2));
        backoff *= 2;
        continue;
      }
      this.violations.push(`${this.name}: /rt answered ${r.status} ${text.slice(0, 200)}`);
      await sleep(200);
    }
  }

  #apply(body) {
    for (const [c, e] of Object.entries(body)) {
      if (!this.last.has(c)) { this.violations.push(`${this.name}: answer for channel ${c} it did not ask for`); continue; }
      const h = this.history.get(c);
      if (e.status === 'ok') {
        for (const m of e.msg) {
          const last = this.last.get(c);
          const prev = m.prev ?? m.id - 1;
          if (m.id <= last) this.violations.push(`${this.name} ${c}: message ${m.id} after ${last} (repeated or out of order)`);
          else if (prev !== last) this.violations.push(`${this.name} ${c}: message ${m.id} (prev ${prev}) after ${last}: a silent gap`);
          h.push({ id: m.id, prev, payload: m.payload, at: Date.now() });
          this.last.set(c, m.id);
        }
      } else if (e.status === 'reset') {
        if (e.reason !== undefined && e.reason !== 'lost' && e.reason !== 'behind') {
          this.violations.push(`${this.name} ${c}: reset with reason ${JSON.stringify(e.reason)}`);
        }
        h.push({ reset: true, from: this.last.get(c), id: e.id, reason: e.reason, at: Date.now() });
        this.last.set(c, e.id);
      } else {
        this.violations.push(`${this.name} ${c}: entry with status ${JSON.stringify(e.status)}`);
      }
    }
  }

  resets(channel) {
    return this.history.get(channel).filter((x) => x.reset);
  }

  // Ids of delivered messages (resets left out).
  delivered(channel) {
    return this.history.get(channel).filter((x) => !x.reset).map((x) => x.id);
  }
}

// Publishes to `channels` in turn through `base`, one at a time, each body
// {"p": name, "seq": n, "attempt": k}; a failed publish is retried after `retryMs` (the
// next attempt of the same seq). Records the acknowledged ones (200 {"id"}) with their time,
// and every failure with its time and status.
export class Publisher {
  constructor(base, channels, { name = 'pub', intervalMs = 20, retryMs = 100, token = TOKEN, timeoutMs = 15000, backlog = 1000 } = {}) {
    Object.assign(this, { base, channels, name, intervalMs, retryMs, token, timeoutMs, backlog });
    this.acked = [];       // { channel, id, seq, at }
    this.failures = [];    // { channel, seq, status, body, at }
    this.unconfirmed = []; // 503 with an id: stored on the master, not confirmed on replicas
    this.latencies = [];   // ms of the acknowledged publishes
    this.stopped = false;
  }

  start() {
    this.done = this.#run();
    return this;
  }

  async stop() {
    this.stopped = true;
    await this.done;
  }

  async #run() {
    let seq = 0;
    while (!this.stopped) {
      const channel = this.channels[seq % this.channels.length];
      seq++;
      for (let attempt = 1; !this.stopped; attempt++) {
        const t0 = Date.now();
        let status = 0, text = '';
        try {
          const r = await fetch(`${this.base}/publish?c=${encodeURIComponent(channel)}&backlog=${this.backlog}`, {
            method: 'POST',
            headers: { Authorization: `Bearer ${this.token}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ p: this.name, seq, attempt, t: Date.now() }),
            signal: AbortSignal.timeout(this.timeoutMs),
          });
          status = r.status;
          text = await r.text();
        } catch (e) {
          text = String(e);
        }
        const at = Date.now();
        let json;
        try { json = JSON.parse(text); } catch { /* not JSON */ }
        if (status === 200 && json && Number.isInteger(json.id)) {
          this.acked.push({ channel, id: json.id, seq, attempt, at });
          this.latencies.push(at - t0);
          break;
        }
        this.failures.push({ channel, seq, attempt, status, body: text.slice(0, 300), at });
        if (status === 503 && json && Number.isInteger(json.id)) this.unconfirmed.push({ channel, id: json.id, seq, at });
        await sleep(this.retryMs);
      }
      await sleep(this.intervalMs);
    }
  }
}

// A channel's Redis key (PROTOCOL.md section 2, default prefix): `what` is msg_id or msg_backlog.
export function channelKey(channel, what) {
  return `channel:{${channel}}:${what}`;
}

// The channel's newest id in Redis (0 when absent).
export async function msgId(port, password, channel) {
  return Number((await redisCommand(port, password, 'GET', channelKey(channel, 'msg_id'))) ?? 0);
}

// Every message JSON in the channel's backlog, ascending.
export async function backlog(port, password, channel) {
  return (await redisCommand(port, password, 'ZRANGE', channelKey(channel, 'msg_backlog'), '0', '-1')).map((j) => JSON.parse(j));
}

// Waits until every poller's last id of every channel it polls equals the channel's msg_id
// in Redis (read through `msgIdOf(channel)`): no poller is stuck behind.
export async function waitCaughtUp(pollers, msgIdOf, { timeout = 15000 } = {}) {
  let behind = [];
  await waitFor(async () => {
    behind = [];
    const want = new Map();
    for (const p of pollers) {
      for (const c of p.channels) {
        if (!want.has(c)) want.set(c, await msgIdOf(c));
        if (p.last.get(c) !== want.get(c)) behind.push(`${p.name} ${c}: at ${p.last.get(c)}, Redis at ${want.get(c)}`);
      }
    }
    return behind.length === 0;
  }, { timeout, interval: 100, what: 'every poller caught up' }).catch((e) => {
    throw new Error(`${e.message.split('(last')[0]}: ${behind.slice(0, 10).join('; ')}${behind.length > 10 ? ' …' : ''}`);
  });
}

// A TCP port that answers (a process listening on it).
export function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}
