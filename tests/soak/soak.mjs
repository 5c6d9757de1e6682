// Chaos soak: real redis-server and rt-server, >= 50 subscribers (stream and state channels,
// multi-channel polls, a few wasm clients in Node), publishers at a steady rate, and faults
// at random times from a seeded RNG. A checker then verifies, per subscriber and channel,
// that every delivered message was published, exactly once and in order (chains), and that
// every gap is covered by a reset with the right reason.
//
//   node tests/soak/soak.mjs     SOAK_SECONDS (default 600), SOAK_SEED (default: random),
//                                SOAK_CHECKER_SELFTEST=1 (must fail: see LOSS_FAULTS),
//                                SOAK_FAULTS=kind,kind (only these faults)
//
// Prints a table and ends with `N lost, N duplicated, N unexplained resets` and pass/fail;
// run directly by node (node:test under the hood, so the harness stops every process by PID).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startRedis, startServer, RedisClient, sleep, waitFor, test, freePort,
} from '../integration/lib/harness.mjs';
import { Poller, Publisher, channelKey } from '../topology/lib/topology.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS || 600);
const SEED = Number(process.env.SOAK_SEED || Math.floor(Math.random() * 2 ** 31));
const POLL_TIMEOUT_S = 2;
const STREAM_BACKLOG = 1000;
const QUIET_MS = 5000;

// mulberry32: a small seeded RNG, so a run's fault schedule can be repeated.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(SEED);
const pick = (arr) => arr[Math.floor(rand() * arr.length)];

// Faults that may lose data: a `lost` reset is explained only after one of these.
// SOAK_CHECKER_SELFTEST=1 forgets that they lose data: the run must then fail (the checker
// can fail).
const LOSS_FAULTS = new Set(process.env.SOAK_CHECKER_SELFTEST ? [] : ['redis-kill9-empty', 'flushall', 'redis-rollback']);
const ALL_FAULTS = ['abort-polls', 'rt-sigkill', 'rt-sigterm', 'redis-kill9-persist', 'redis-kill9-empty',
  'flushall', 'client-kill-pubsub', 'redis-freeze', 'redis-rollback'];
// SOAK_FAULTS=a,b: only these kinds (to study one fault); default every kind.
const FAULTS = process.env.SOAK_FAULTS ? process.env.SOAK_FAULTS.split(',') : ALL_FAULTS;
for (const f of FAULTS) if (!ALL_FAULTS.includes(f)) throw new Error(`SOAK_FAULTS: unknown fault ${f} (${ALL_FAULTS.join(', ')})`);

function procStats(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = Number(/VmRSS:\s+(\d+)/.exec(st)[1]);
    return { rssKiB: rss, fds: fs.readdirSync(`/proc/${pid}/fd`).length };
  } catch { return { rssKiB: NaN, fds: NaN }; }
}

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

// Wasm subscribers: the built client's own dedupe, chain check and reconnects.
async function startWasmSubscriber(base, channels, name) {
  const { createClient, wasmBinary } = await import('../wasm/helpers.mjs');
  const rt = await createClient({ baseUrl: base, wasmBinary, pollTimeoutMs: POLL_TIMEOUT_S * 1000,
    deadlineMarginMs: 2000, window: null, document: null, navigator: null });
  const sub = { name, rt, channels, history: new Map(channels.map((c) => [c, []])), last: new Map(channels.map((c) => [c, 0])) };
  for (const c of channels) {
    rt.subscribe(c, {
      lastId: 0,
      onMessage: (p, id) => { sub.history.get(c).push({ id, payload: p, at: Date.now() }); sub.last.set(c, id); },
      onReset: (newest, id, _c, reason) => { sub.history.get(c).push({ reset: true, id, reason, at: Date.now() }); sub.last.set(c, id); },
    });
  }
  return sub;
}

test('chaos soak', { timeout: (SECONDS + 240) * 1000 }, async () => {
  console.log(`# soak: ${SECONDS} s, seed ${SEED} (SOAK_SEED=${SEED} repeats the fault schedule)`);
  const redisPort = await freePort();
  const redisArgs = ['--appendonly', 'yes', '--appendfsync', 'always'];
  let redis = await startRedis({ port: redisPort, args: redisArgs });
  const redisDir = redis.dir;
  const serverPort = await freePort();
  let server = await startServer({ redisUrl: redis.url, port: serverPort, pollTimeout: POLL_TIMEOUT_S });
  const base = server.base;
  const baseline = procStats(server.pid);

  const streams = Array.from({ length: 8 }, (_, i) => `soak.s${i}`);
  const states = Array.from({ length: 4 }, (_, i) => `soak.t${i}`);
  const backlogOf = (c) => (states.includes(c) ? 1 : STREAM_BACKLOG);

  const pollers = [];
  for (let i = 0; i < 54; i++) {
    const n = 1 + (i % 3);  // 1, 2 or 3 channels per poll
    const chans = new Set();
    while (chans.size < n) chans.add(i % 2 ? pick(streams) : pick([...streams, ...states]));
    pollers.push(new Poller(base, [...chans], { name: `sub${i}`, pollTimeoutMs: POLL_TIMEOUT_S * 1000, maxBackoffMs: 500 }).start());
  }
  const wasm = [];
  for (let i = 0; i < 4; i++) wasm.push(await startWasmSubscriber(base, [streams[i], streams[i + 4]], `wasm${i}`));
  await sleep(1000);

  const pubs = [
    new Publisher(base, streams, { name: 'pubS', intervalMs: 25, retryMs: 100, backlog: STREAM_BACKLOG, timeoutMs: 5000 }).start(),
    new Publisher(base, states, { name: 'pubT', intervalMs: 50, retryMs: 100, backlog: 1, timeoutMs: 5000 }).start(),
  ];

  // ---- faults
  const faults = [];   // { kind, at, end }
  const faultCount = Object.fromEntries(FAULTS.map((k) => [k, 0]));
  const restartRedis = async (empty) => {
    await redis.kill();
    if (empty) {
      for (const f of fs.readdirSync(redisDir)) if (f !== 'redis.log') fs.rmSync(path.join(redisDir, f), { recursive: true, force: true });
    }
    redis = await startRedis({ port: redisPort, dir: redisDir, args: redisArgs });
  };
  const redisCmd = async (...args) => { const c = await RedisClient.connect(redisPort); try { return await c.command(...args); } finally { c.close(); } };
  // A restart from an older snapshot (PROTOCOL.md section 2: Redis rolled back). The snapshot
  // is saved with writes paused, so that its msg_id per channel is known exactly; publishing
  // goes on for 1-3 s (writes the rollback loses, acknowledged ones among them); then Redis
  // is SIGKILLed and started from that dump.rdb alone. f.snap: channel -> msg_id in the
  // snapshot; f.cut: above every id the old Redis issued, below every id the new one issues.
  const allChannels = [...streams, ...states];
  const rollbackRedis = async (f) => {
    const older = path.join(redisDir, 'older.rdb');
    const c = await RedisClient.connect(redisPort);
    try {
      await c.command('CLIENT', 'PAUSE', '5000', 'WRITE');
      try {
        const ids = await c.command('MGET', ...allChannels.map((ch) => channelKey(ch, 'msg_id')));
        await c.command('SAVE');
        f.snap = new Map(allChannels.map((ch, i) => [ch, Number(ids[i] ?? 0)]));
      } finally { await c.command('CLIENT', 'UNPAUSE'); }
    } finally { c.close(); }
    fs.copyFileSync(path.join(redisDir, 'dump.rdb'), older);
    await sleep(1000 + rand() * 2000);
    await redis.kill();
    await sleep(5);
    f.cut = (Date.now() + 2) * 1000;  // ids are Redis TIME in µs, on this machine's clock
    for (const name of fs.readdirSync(redisDir)) {
      if (name !== 'redis.log' && name !== 'older.rdb') fs.rmSync(path.join(redisDir, name), { recursive: true, force: true });
    }
    fs.renameSync(older, path.join(redisDir, 'dump.rdb'));
    // With appendonly on and no AOF, Redis would start empty: load the dump without it, then
    // turn the AOF on (a rewrite from the loaded data) and wait for it, so that a later
    // redis-kill9-persist loses nothing.
    redis = await startRedis({ port: redisPort, dir: redisDir, args: [...redisArgs, '--appendonly', 'no'] });
    await redisCmd('CONFIG', 'SET', 'appendonly', 'yes');
    await waitFor(async () => {
      const info = await redisCmd('INFO', 'persistence');
      return /aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)
        && fs.existsSync(path.join(redisDir, 'appendonlydir', 'appendonly.aof.manifest'));
    }, { timeout: 10000, interval: 50, what: 'the AOF rewritten after the rollback' });
  };
  const inject = async (kind) => {
    const f = { kind, at: Date.now() };
    faults.push(f);
    faultCount[kind]++;
    switch (kind) {
      case 'abort-polls': for (let i = 0; i < 8; i++) pick(pollers).ctrl?.abort(); break;
      case 'rt-sigkill': await server.proc.child.kill('SIGKILL'); await server.proc.exited;
        server = await startServer({ redisUrl: redis.url, port: serverPort, pollTimeout: POLL_TIMEOUT_S }); break;
      case 'rt-sigterm': {
        const r = await server.stop();
        if (r.forced || r.code !== 0) throw new Error(`rt-server after SIGTERM: ${JSON.stringify(r)}`);
        server = await startServer({ redisUrl: redis.url, port: serverPort, pollTimeout: POLL_TIMEOUT_S }); break;
      }
      case 'redis-kill9-persist': await restartRedis(false); break;
      case 'redis-kill9-empty': await restartRedis(true); break;
      case 'flushall': await redisCmd('FLUSHALL'); break;
      case 'client-kill-pubsub': await redisCmd('CLIENT', 'KILL', 'TYPE', 'pubsub'); break;
      case 'redis-freeze': redis.freeze(); await sleep(1000 + rand() * 1000); redis.thaw(); break;
      case 'redis-rollback': await rollbackRedis(f); break;
      default: throw new Error(kind);
    }
    f.end = Date.now();
    console.log(`# ${((f.at - t0) / 1000).toFixed(1)} s: ${kind}`);
  };
  const t0 = Date.now();
  const end = t0 + SECONDS * 1000;
  let k = 0;
  while (Date.now() < end - 4000) {
    await sleep(1000 + rand() * 3000);
    // Every kind at least once early on, then at random.
    await inject(k < FAULTS.length ? FAULTS[(k + SEED) % FAULTS.length] : pick(FAULTS));
    k++;
  }
  while (Date.now() < end) await sleep(200);

  // ---- quiet period: stop publishing, let everyone catch up
  for (const p of pubs) await p.stop();
  const msgIdOf = async (c) => Number((await redisCmd('GET', channelKey(c, 'msg_id'))) ?? 0);
  const subs = [...pollers, ...wasm];
  let behind = [];
  await waitFor(async () => {
    behind = [];
    for (const s of subs) for (const c of s.channels) {
      const want = await msgIdOf(c);
      if (s.last.get(c) !== want) behind.push(`${s.name} ${c}: at ${s.last.get(c)}, Redis ${want}`);
    }
    return behind.length === 0;
  }, { timeout: 30000, interval: 200, what: 'every subscriber caught up' }).catch(() => {});
  const before = procStats(server.pid);
  for (const p of pollers) await p.stop();
  for (const w of wasm) w.rt.close();
  await sleep(QUIET_MS);
  const after = procStats(server.pid);

  // ---- checker
  const sent = new Map();  // `${p}/${seq}/${attempt}` -> { channel, id (if acked) }
  const acked = new Map(); // channel -> sorted acked ids
  for (const p of pubs) {
    for (const a of p.acked) {
      sent.set(`${p.name}/${a.seq}/${a.attempt}`, { channel: a.channel, id: a.id });
      if (!acked.has(a.channel)) acked.set(a.channel, []);
      acked.get(a.channel).push(a.id);
    }
    // Answer lost (server killed mid-publish, Redis gone after the write): maybe stored.
    for (const f of p.failures) {
      const key = `${p.name}/${f.seq}/${f.attempt}`;
      if (!sent.has(key)) sent.set(key, { channel: f.channel, id: null });
    }
  }
  for (const ids of acked.values()) ids.sort((a, b) => a - b);

  // Acknowledged messages that a rollback took out of the channel's history: issued after its
  // snapshot, before the old Redis died. A subscriber that had not got them yet continues from
  // the snapshot's history: no message and no reset can tell it about them (nobody has them).
  const rollbacks = faults.filter((f) => f.kind === 'redis-rollback' && f.snap && f.cut);
  const erasedByRollback = (c, id) => rollbacks.some((f) => id > f.snap.get(c) && id < f.cut);
  let erased = 0;

  let lost = 0, duplicated = 0, unexplained = 0, delivered = 0;
  const resets = { lost: 0, behind: 0, other: 0 };
  const latencies = [];
  const problems = [];
  const lossFaultsBetween = (t1, t2) => faults.some((f) => LOSS_FAULTS.has(f.kind) && f.at <= t2 && (f.end ?? Date.now()) >= t1 - 1000);

  for (const s of subs) {
    if (s.violations) for (const v of s.violations) {
      if (/repeated|out of order/.test(v)) duplicated++;
      else if (/silent gap/.test(v)) lost++;
      else unexplained++;
      problems.push(v);
    }
    for (const c of s.channels) {
      const h = s.history.get(c);
      const seenIds = new Set();
      const seenKeys = new Set();
      let lastId = 0, lastAt = t0;
      const gaps = [];  // (from, to]
      for (const e of h) {
        if (e.reset) {
          resets[e.reason in resets ? e.reason : 'other']++;
          gaps.push([lastId, e.id]);
          let ok;
          if (e.reason === 'lost') ok = lossFaultsBetween(lastAt, e.at);
          else if (e.reason === 'behind') {
            // Trimmed past the subscriber: a state channel, or more than a backlog behind.
            const skipped = (acked.get(c) || []).filter((id) => id > lastId && id <= e.id).length;
            ok = backlogOf(c) === 1 || skipped > backlogOf(c);
          } else ok = false;
          if (!ok) { unexplained++; problems.push(`${s.name} ${c}: reset ${e.reason} at ${((e.at - t0) / 1000).toFixed(1)} s from ${lastId} to ${e.id}, no fault explains it`); }
          lastId = e.id; lastAt = e.at;
          continue;
        }
        delivered++;
        if (seenIds.has(e.id)) { duplicated++; problems.push(`${s.name} ${c}: ${e.id} twice`); }
        seenIds.add(e.id);
        if (e.id <= lastId && !s.violations) { duplicated++; problems.push(`${s.name} ${c}: ${e.id} after ${lastId}`); }
        const key = e.payload && `${e.payload.p}/${e.payload.seq}/${e.payload.attempt}`;
        const src = sent.get(key);
        if (!src || src.channel !== c || (src.id !== null && src.id !== e.id)) {
          unexplained++; problems.push(`${s.name} ${c}: message ${e.id} ${JSON.stringify(e.payload)} is not in the published history`);
        } else if (seenKeys.has(key)) { duplicated++; problems.push(`${s.name} ${c}: payload ${key} twice`); }
        seenKeys.add(key);
        if (e.payload && e.payload.t) latencies.push(e.at - e.payload.t);
        lastId = e.id; lastAt = e.at;
      }
      // Every acknowledged message after the subscriber's start: delivered or inside a reset gap.
      for (const id of acked.get(c) || []) {
        if (seenIds.has(id)) continue;
        if (gaps.some(([a, b]) => id > a && id <= b)) continue;
        if (id > lastId) continue;  // not caught up: reported below
        if (erasedByRollback(c, id)) { erased++; continue; }
        lost++; problems.push(`${s.name} ${c}: acknowledged ${id} neither delivered nor covered by a reset`);
      }
    }
  }
  for (const b of behind) { unexplained++; problems.push(`not caught up after the run: ${b}`); }

  latencies.sort((a, b) => a - b);
  const row = (k2, v) => console.log(`${k2.padEnd(40)} ${String(v)}`);
  console.log('\n--------------------------------------------------------------');
  row('seed', SEED);
  row('duration s', SECONDS);
  row('subscribers (http / wasm)', `${pollers.length} / ${wasm.length}`);
  row('channels (stream / state)', `${streams.length} / ${states.length}`);
  row('publishes acknowledged', pubs.reduce((n, p) => n + p.acked.length, 0));
  row('publish attempts failed', pubs.reduce((n, p) => n + p.failures.length, 0));
  row('messages delivered', delivered);
  row('acked, erased by a rollback, not seen', erased);
  row('resets lost / behind / other', `${resets.lost} / ${resets.behind} / ${resets.other}`);
  for (const kd of FAULTS) row(`fault ${kd}`, faultCount[kd]);
  row('latency p50 / p99 ms', `${pct(latencies, 0.5)} / ${pct(latencies, 0.99)}`);
  row('rt-server RSS KiB fresh', baseline.rssKiB);
  row('rt-server RSS KiB before / after quiet', `${before.rssKiB} / ${after.rssKiB}`);
  row('rt-server open fds fresh', baseline.fds);
  row('rt-server open fds before / after quiet', `${before.fds} / ${after.fds}`);
  console.log('--------------------------------------------------------------');
  for (const p of problems.slice(0, 30)) console.log(`# ${p}`);
  // Leak check: once every poll is gone, the server holds no more fds than a fresh one (+ slack).
  const fdLeak = after.fds > baseline.fds + 4;
  if (fdLeak) console.log(`# fd leak: ${after.fds} open after the quiet period, ${baseline.fds} when fresh`);
  const pass = lost === 0 && duplicated === 0 && unexplained === 0 && !fdLeak && delivered > 0;
  console.log(`${lost} lost, ${duplicated} duplicated, ${unexplained} unexplained resets`);
  console.log(pass ? 'pass' : 'fail');
  await server.stop();
  await redis.stop();
  assert.ok(pass, `soak failed (seed ${SEED})`);
});
