// Limits under load (docs/HARDENING.md "Limits under load"): --max-connections, slowloris,
// a 1 MiB message fanned out to many held polls, a publish storm over 10,000 channels.
// Assertions are about correctness and bounds (nothing lost, nothing stuck, memory and
// connections bounded); the figures are printed as test diagnostics (bench/limits.sh runs
// the same scenarios bigger). Timings are loose: the machine is shared and loaded.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { before, after } from 'node:test';
import {
  test, startRedis, withServer, startProcess, assertStillServes, metricsText, metricValue, publishOk,
  publish, poll, uniqueChannel, waitFor, sleep, keys, RedisClient, PUBLISH_LUA, assertChain, rawHttp,
  RT_SERVER_BIN, REPO_ROOT, TOKEN, freePort,
} from './lib/harness.mjs';
import { SCALE, SANITIZED, KeepAlive, openMany, slowloris, memKb, resetPeak, fdCount, mib, percentile, cpuSeconds } from './lib/limits.mjs';

let redis, rc;
const script = fs.readFileSync(PUBLISH_LUA, 'utf8');

before(async () => {
  redis = await startRedis();
  rc = await RedisClient.connect(redis.port);
});
after(async () => {
  rc?.close();
  await redis?.stop();
});

// A publish straight to Redis (the way a backend does), for when the server takes no
// new connection.
async function redisPublish(channel, payload) {
  const k = keys(channel);
  return Number(await rc.command('EVAL', script, '3', k.id, k.backlog, k.pubsub, JSON.stringify(payload), '100', '0'));
}

async function metricsOver(ka) {
  const r = await ka.send('/metrics');
  assert.equal(r.status, 200);
  return r.body.toString('utf8');
}

const m = (text, name, labels) => metricValue(text, name, labels) ?? 0;

test('--max-connections: at the bound newcomers wait in the listen queue, idle connections make room, held polls are kept', { timeout: 90000 }, async (t) => {
  const BOUND = 20;
  await withServer({ redisUrl: redis.url, pollTimeout: 30, args: ['--max-connections', String(BOUND)] }, async (srv) => {
    const text0 = await metricsText(srv.base);
    assert.equal(m(text0, 'rt_connections_limit'), BOUND);
    await sleep(200);  // fetch's pooled connection: let it close or idle (it is shed at the bound if idle)
    const monitor = await KeepAlive.open(srv.port);
    const held = [];
    for (let i = 0; i < BOUND - 1; i++) {
      const ka = await KeepAlive.open(srv.port);
      const ch = uniqueChannel('bound');
      held.push({ ka, ch, answer: ka.send(`/rt?c=${ch}&m=0`) });
      held.at(-1).answer.catch(() => {});
    }
    // Everything but the monitor is a held poll; fetch's pooled connection (if still open)
    // is idle and is shed once newcomers wait.
    await waitFor(async () => m(await metricsOver(monitor), 'rt_held_polls') === BOUND - 1,
      { timeout: 10000, what: `${BOUND - 1} held polls` });
    // Newcomers: connected by the kernel, not accepted by rt.
    const NEW = 10;
    const answered = [];
    const newcomers = Array.from({ length: NEW }, (_, i) =>
      rawHttp(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { timeout: 30000 })
        .then((r) => { answered.push({ i, at: Date.now(), status: r.status }); return r; }));
    let seen = null;
    await waitFor(async () => {
      const text = await metricsOver(monitor);
      seen = { conns: m(text, 'rt_connections'), queue: m(text, 'rt_accept_queue'), pauses: m(text, 'rt_accept_pauses_total') };
      return seen.queue >= NEW - 1 && seen.conns === BOUND;  // fetch's idle one may have made room for one
    }, { timeout: 5000, interval: 100, what: 'newcomers waiting in the accept queue' });
    t.diagnostic(`at the bound: ${JSON.stringify(seen)}`);
    assert.ok(seen.pauses >= 1);
    assert.ok(answered.length <= 1, `newcomers wait while the bound is full of held polls: ${answered.length} answered`);
    // The monitor goes idle: after its second of grace it is closed for a newcomer, and
    // each newcomer (Connection: close) makes room for the next.
    const tIdle = Date.now();
    const closed = await Promise.race([monitor.closed, sleep(10000).then(() => null)]);
    assert.ok(closed?.byServer, 'the idle monitor connection was closed by the server');
    t.diagnostic(`idle connection shed after ${Date.now() - tIdle} ms`);
    const results = await Promise.all(newcomers);
    assert.deepEqual(results.map((r) => r.status), Array(NEW).fill(200), 'every newcomer is served');
    // The held polls were never touched: each still gets its message.
    const ids = await Promise.all(held.slice(0, 3).map((h) => redisPublish(h.ch, 'late')));
    for (let i = 0; i < 3; i++) {
      const r = await held[i].answer;
      assert.deepEqual(JSON.parse(r.body), { [held[i].ch]: { status: 'ok', msg: [{ id: ids[i], prev: 0, payload: 'late' }] } });
    }
    assert.ok(held.every((h) => !h.ka.byServer), 'no held poll was closed');
    for (const h of held) h.ka.destroy();
    await waitFor(async () => m(await metricsText(srv.base), 'rt_connections') <= 2, { timeout: 5000, what: 'connections closed' });
    const text = await metricsText(srv.base);
    assert.ok(m(text, 'rt_connections_shed_total', { reason: 'idle' }) >= 1, 'shed counted');
    t.diagnostic(`pauses ${m(text, 'rt_accept_pauses_total')}, shed idle ${m(text, 'rt_connections_shed_total', { reason: 'idle' })}`);
    await assertStillServes(srv.base);
    const warned = srv.log().split('\n').filter((l) => l.includes('at the connection bound'));
    const ti = srv.argv.lastIndexOf('--threads');
    const threads = ti >= 0 ? Number(srv.argv[ti + 1]) : 1;  // each worker logs its own pauses
    assert.ok(warned.length >= 1 && warned.length <= 2 * threads, `the pause is logged, not once per accept:\n${warned.join('\n')}`);
  });
});

test('the automatic bound stays below the file limit: no failed accept, and Redis keeps its connections', { timeout: 60000 }, async (t) => {
  const port = await freePort();
  // 48 descriptors: the automatic bound leaves half of them (24) to connections.
  const p = startProcess('rt-server', `:${port}`, 'prlimit', ['--nofile=48:48', RT_SERVER_BIN, '--listen', `127.0.0.1:${port}`,
    '--redis', redis.url, '--poll-timeout', '2'], { cwd: REPO_ROOT, env: { ...process.env, RT_PUBLISH_TOKEN: TOKEN } });
  const base = `http://127.0.0.1:${port}`;
  const socks = [];
  try {
    await waitFor(async () => (await fetch(base + '/healthz').catch(() => null))?.status === 200, { timeout: 20000, what: 'server up' });
    assert.equal(m(await metricsText(base), 'rt_connections_limit'), 24);
    for (let i = 0; i < 80; i++) {
      socks.push(await new Promise((resolve, reject) => {
        const s = net.createConnection({ port, host: '127.0.0.1' }, () => resolve(s));
        s.once('error', reject);
        s.on('error', () => {});
      }));
    }
    await sleep(1500);
    for (const s of socks) s.destroy();
    await waitFor(async () => (await fetch(base + '/healthz').catch(() => null))?.status === 200, { timeout: 10000, what: 'serving again' });
    const c = uniqueChannel('auto');
    const id = await publishOk(base, c, 'x');
    assert.equal((await poll(base, [[c, 0]])).json[c].msg[0].id, id);
    const log = p.log();
    assert.match(log, /at the connection bound/);
    assert.doesNotMatch(log, /accept failed|Too many open files/, 'never out of descriptors');
  } finally {
    for (const s of socks) s.destroy();
    const res = await p.stop();
    assert.equal(res.code, 0, p.log());
  }
});

// Slowloris against a server with `bound` (0: the automatic one, far above the attack).
async function slowlorisRun(t, bound, seconds) {
  const HELD = 50;
  const args = ['--request-timeout', '3', ...(bound ? ['--max-connections', String(bound)] : [])];
  await withServer({ redisUrl: redis.url, pollTimeout: 60, args }, async (srv) => {
    const BOUND = m(await metricsText(srv.base), 'rt_connections_limit');
    // Legitimate clients first: held polls on keep-alive connections that re-poll at once.
    const chans = Array.from({ length: HELD }, () => uniqueChannel('loris'));
    const pollers = [];
    const latencies = [];
    const sentAt = new Map();  // id -> publish time
    const got = new Map(chans.map((c) => [c, []]));
    let running = true;
    for (const ch of chans) {
      const ka = await KeepAlive.open(srv.port);
      const loop = (async () => {
        let last = 0;
        while (running) {
          const r = await ka.send(`/rt?c=${ch}&m=${last}`);
          assert.equal(r.status, 200, r.body?.toString());
          const e = JSON.parse(r.body)[ch];
          if (!e) continue;
          assert.equal(e.status, 'ok', JSON.stringify(e));
          last = assertChain(e.msg, last, ch);
          for (const x of e.msg) {
            got.get(ch).push(x.id);
            if (sentAt.has(x.id)) latencies.push(Date.now() - sentAt.get(x.id));
          }
        }
      })();
      loop.catch(() => {});
      pollers.push({ ka, loop });
    }
    await waitFor(async () => m(await metricsText(srv.base), 'rt_held_polls') === HELD, { timeout: 10000, what: 'held polls' });
    const before = { ...memKb(srv.pid), fds: fdCount(srv.pid) };
    const loris = slowloris(srv.port, SCALE.tricklers);
    const newcomer = [];
    const published = new Map(chans.map((c) => [c, []]));
    const t0 = Date.now();
    let peak = { conns: 0, queue: 0, rss: 0, fds: 0 };
    try {
      let round = 0;
      while (Date.now() - t0 < seconds * 1000) {
        await sleep(500);
        // A message for a few held polls (straight into Redis: no connection needed).
        for (let i = 0; i < 5; i++) {
          const ch = chans[(round * 5 + i) % HELD];
          const at = Date.now();
          const id = await redisPublish(ch, { round, i });
          sentAt.set(id, at);
          published.get(ch).push(id);
        }
        // A new client on a fresh connection: it must be served, behind the tricklers.
        if (round % 2 === 0) {
          const at = Date.now();
          newcomer.push(rawHttp(srv.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { timeout: 30000 })
            .then((r) => ({ status: r.status, ms: Date.now() - at })));
        }
        const mem = memKb(srv.pid);
        peak = { ...peak, rss: Math.max(peak.rss, mem.rss), fds: Math.max(peak.fds, fdCount(srv.pid)) };
        round++;
      }
      const metrics = await metricsText(srv.base).catch(() => '');
      peak.conns = m(metrics, 'rt_connections');
      peak.queue = m(metrics, 'rt_accept_queue');
    } finally {
      loris.stop();
    }
    const nc = await Promise.all(newcomer);
    // Every message reached its held poll.
    await waitFor(() => chans.every((c) => published.get(c).every((id) => got.get(c).includes(id))),
      { timeout: 10000, what: 'every message delivered to its held poll' });
    running = false;
    for (const p of pollers) p.ka.destroy();
    await waitFor(async () => m(await metricsText(srv.base), 'rt_connections') <= 2, { timeout: 10000, what: 'tricklers gone' });
    const text = await metricsText(srv.base);
    const afterMem = { ...memKb(srv.pid), fds: fdCount(srv.pid) };
    const lifeMax = Math.max(...loris.lifetimes);
    t.diagnostic(`tricklers ${SCALE.tricklers} (bound ${BOUND}, request timeout 3 s, ${seconds} s): ` +
      `opened ${loris.opened}, cut by the server ${loris.cut} (lifetime p50 ${percentile(loris.lifetimes, 50)} ms, max ${lifeMax} ms), ` +
      `request timeouts ${m(text, 'rt_request_timeouts_total')}, shed slow ${m(text, 'rt_connections_shed_total', { reason: 'slow' })}, ` +
      `shed idle ${m(text, 'rt_connections_shed_total', { reason: 'idle' })}, accept pauses ${m(text, 'rt_accept_pauses_total')}`);
    t.diagnostic(`at the end of the attack: connections ${peak.conns}, accept queue ${peak.queue}; peak rss ${mib(peak.rss)} MiB, peak fds ${peak.fds}`);
    t.diagnostic(`held-poll delivery latency during the attack: n=${latencies.length} p50 ${percentile(latencies, 50)} ms, ` +
      `p99 ${percentile(latencies, 99)} ms, max ${Math.max(...latencies)} ms`);
    t.diagnostic(`newcomers: n=${nc.length} p50 ${percentile(nc.map((x) => x.ms), 50)} ms, max ${Math.max(...nc.map((x) => x.ms))} ms`);
    t.diagnostic(`rss before ${mib(before.rss)} MiB, after ${mib(afterMem.rss)} MiB; fds before ${before.fds}, after ${afterMem.fds}`);
    assert.ok(nc.every((x) => x.status === 200), `every newcomer served: ${JSON.stringify(nc)}`);
    assert.ok(loris.cut >= SCALE.tricklers / 2, `the server cuts tricklers (${loris.cut})`);
    // Cut by the request timeout (3 s from the accept) or shed; their time in the
    // listen queue comes on top (loose).
    assert.ok(lifeMax < 20000, `no trickler lives on (${lifeMax} ms)`);
    assert.ok(peak.conns <= BOUND, `connections within the bound (${peak.conns})`);
    assert.ok(Math.max(...latencies) < 10000, `held polls are not starved (max ${Math.max(...latencies)} ms)`);
    assert.ok(afterMem.fds <= before.fds + 5, `descriptors back (${before.fds} -> ${afterMem.fds})`);
    if (bound === 0) {
      // Below the bound nothing is shed: the request timeout (from the accept) cuts them.
      assert.ok(m(text, 'rt_request_timeouts_total') >= SCALE.tricklers / 2, 'cut by the request timeout');
      assert.ok(percentile(loris.lifetimes, 50) >= 2500, `cut at the request timeout (p50 ${percentile(loris.lifetimes, 50)} ms)`);
    } else {
      assert.ok(m(text, 'rt_connections_shed_total', { reason: 'slow' }) >= 1, 'slow connections shed at the bound');
    }
    await assertStillServes(srv.base);
  });
}

test(`slowloris: ${SCALE.tricklers} connections trickling a header byte a second are cut by the request timeout; held polls are not delayed`, { timeout: 180000 }, async (t) => {
  await slowlorisRun(t, 0, Math.max(8, SCALE.trickleSeconds - 4));
});

test(`slowloris at --max-connections ${SCALE.trickleBound}: ${SCALE.tricklers} tricklers cannot hold every slot; newcomers and held polls are served`, { timeout: 180000 }, async (t) => {
  await slowlorisRun(t, SCALE.trickleBound, SCALE.trickleSeconds);
});

// Bench only (RT_LIMITS_REPEAT_ATTACKS): RSS after each of many slowloris attacks on one
// server levels off (freed memory kept by glibc, not leaked).
test('RSS over repeated slowloris attacks levels off', { timeout: 900000, skip: SCALE.repeatAttacks === 0 && 'bench only (RT_LIMITS_REPEAT_ATTACKS)' }, async (t) => {
  await withServer({ redisUrl: redis.url, pollTimeout: 30, args: ['--request-timeout', '3', '--max-connections', String(SCALE.trickleBound)] }, async (srv) => {
    const rss = [];
    for (let i = 0; i < SCALE.repeatAttacks; i++) {
      const l = slowloris(srv.port, SCALE.tricklers);
      await sleep(5000);
      l.stop();
      await waitFor(async () => m(await metricsText(srv.base), 'rt_connections') <= 1, { timeout: 20000, what: 'tricklers gone' });
      await sleep(500);
      rss.push(memKb(srv.pid).rss);
      t.diagnostic(`attack ${i + 1}: ${l.cut} connections cut, rss ${mib(rss.at(-1))} MiB`);
    }
    const half = Math.floor(rss.length / 2);
    if (!SANITIZED && rss.length >= 4) {
      assert.ok(rss.at(-1) - rss[half] < 16 * 1024, `rss levels off: ${rss.map(mib).join(', ')} MiB`);
    }
    await assertStillServes(srv.base);
  });
});

test(`a 1 MiB message (the --max-body limit) reaches ${SCALE.fanout} held polls intact, its body shared`, { timeout: 180000 }, async (t) => {
  const MAX = 1 << 20;
  const N = SCALE.fanout;
  await withServer({ redisUrl: redis.url, pollTimeout: 120, args: ['--max-body', String(MAX)] }, async (srv) => {
    const ch = uniqueChannel('big');
    // A JSON string of exactly MAX bytes with varied content.
    const chars = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_';
    let s = '';
    for (let i = 0; s.length < MAX - 2; i++) s += chars[(i * 7919 + (i >> 6)) % chars.length];
    const body = `"${s}"`;
    assert.equal(Buffer.byteLength(body), MAX);
    assert.equal((await publish(srv.base, ch, body + ' ')).status, 413, 'one byte more is refused');
    const conns = await openMany(srv.port, N, { hash: true });
    const answers = conns.map((ka) => ka.send(`/rt?c=${ch}&m=0`));
    await waitFor(async () => m(await metricsText(srv.base), 'rt_held_polls') === N, { timeout: 30000, what: `${N} held polls` });
    await sleep(300);
    const mem0 = memKb(srv.pid);
    const canReset = resetPeak(srv.pid);
    const t0 = Date.now();
    const res = await publish(srv.base, ch, body);
    assert.equal(res.status, 200, res.body);
    const id = res.json.id;
    const got = await Promise.all(answers);
    const ms = Date.now() - t0;
    const mem1 = memKb(srv.pid);
    // One answer read whole: the payload as published, byte for byte.
    const one = await poll(srv.base, [[ch, 0]]);
    assert.deepEqual(one.json, { [ch]: { status: 'ok', msg: [{ id, prev: 0, payload: s }] } });
    const expected = (await import('node:crypto')).createHash('sha256').update(one.body).digest('hex');
    assert.ok(got.every((r) => r.status === 200 && r.length === Buffer.byteLength(one.body) && r.sha256 === expected),
      'every held poll got the same, complete answer');
    for (const ka of conns) ka.destroy();
    await waitFor(async () => m(await metricsText(srv.base), 'rt_open_polls') === 0, { timeout: 10000, what: 'polls closed' });
    await sleep(500);
    const mem2 = memKb(srv.pid);
    const peakGrowth = (canReset ? mem1.hwm : mem1.rss) - mem0.rss;
    t.diagnostic(`${N} held polls x ${(one.body.length / 1048576).toFixed(2)} MiB answer = ${(N * one.body.length / 1048576).toFixed(0)} MiB sent in ${ms} ms`);
    t.diagnostic(`rss with ${N} held polls ${mib(mem0.rss)} MiB, peak during the fan-out ${mib(canReset ? mem1.hwm : mem1.rss)} MiB` +
      `${canReset ? '' : ' (peak not resettable: rss after)'}, after ${mib(mem2.rss)} MiB`);
    // A copy per answer would be N MiB; the shared body costs about one.
    if (!SANITIZED) assert.ok(peakGrowth < 200 * 1024, `peak rss grew ${mib(peakGrowth)} MiB for ${N} answers of 1 MiB`);
    await assertStillServes(srv.base);
  });
});

test(`a publish storm over ${SCALE.stormChannels} channels: nothing lost, nothing stuck, subscriptions and memory come back down`, { timeout: 240000 }, async (t) => {
  const C = SCALE.stormChannels;
  const ROUNDS = SCALE.stormRounds;
  const WIDE = 500;  // channels per wide poll (a front page's sticker counts)
  await withServer({ redisUrl: redis.url, pollTimeout: 30 }, async (srv) => {
    const run = Date.now().toString(36);
    const chans = Array.from({ length: C }, (_, i) => `storm-${run}-${i}`);
    const published = new Map(chans.map((c) => [c, []]));
    const last = new Map(chans.map((c) => [c, 0]));
    const problems = [];
    let running = true;
    let answers = 0;
    // Wide pollers cover every channel; single-channel pollers a sample of them.
    const groups = [];
    for (let i = 0; i < C; i += WIDE) groups.push(chans.slice(i, i + WIDE));
    const sample = chans.filter((_, i) => i % Math.ceil(C / 100) === 7);
    const sampleLast = new Map(sample.map((c) => [c, 0]));
    // Raw keep-alive connections: fetch costs the test more CPU than the server.
    const pollConns = await openMany(srv.port, groups.length + sample.length);
    const loop = async (ka, group, lastMap) => {
      while (running) {
        let r;
        try {
          r = await ka.send('/rt?' + group.map((c) => `c=${c}&m=${lastMap.get(c)}`).join('&'));
        } catch (e) {
          if (running) problems.push(`poll failed: ${e.message}`);
          return;
        }
        answers++;
        if (r.status !== 200) { problems.push(`poll ${r.status} ${r.body}`); await sleep(100); continue; }
        for (const [c, e] of Object.entries(JSON.parse(r.body))) {
          if (e.status !== 'ok') { problems.push(`${c}: ${JSON.stringify(e)}`); lastMap.set(c, e.id); continue; }
          try { lastMap.set(c, assertChain(e.msg, lastMap.get(c), c)); } catch (err) { problems.push(err.message); }
        }
      }
    };
    const loops = [...groups.map((g, i) => loop(pollConns[i], g, last)),
      ...sample.map((c, i) => loop(pollConns[groups.length + i], [c], sampleLast))];
    await waitFor(async () => m(await metricsText(srv.base), 'rt_held_polls') === groups.length + sample.length,
      { timeout: 30000, what: 'pollers held' });
    await sleep(500);
    const mem0 = memKb(srv.pid);
    const m0 = await metricsText(srv.base);
    t.diagnostic(`before: ${m(m0, 'rt_subscribed_channels')} channels subscribed, rss ${mib(mem0.rss)} MiB`);
    // The storm: every channel ROUNDS times, in a shuffled order per round, over
    // keep-alive connections (fetch's pool).
    const t0 = Date.now();
    const cpu0 = { rt: cpuSeconds(srv.pid), redis: cpuSeconds(redis.pid), node: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 };
    let peakRss = mem0.rss;
    let n = 0;
    const pubConns = await openMany(srv.port, SCALE.stormConcurrency);
    const headers = { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' };
    for (let round = 0; round < ROUNDS; round++) {
      const order = chans.map((c, i) => [c, (i * 2654435761 + round * 40503) % 4294967296]).sort((a, b) => a[1] - b[1]).map((x) => x[0]);
      let next = 0;
      await Promise.all(pubConns.map(async (ka) => {
        while (next < order.length) {
          const c = order[next++];
          const r = await ka.send(`/publish?c=${c}`, { method: 'POST', body: JSON.stringify({ round }), headers });
          assert.equal(r.status, 200, r.body.toString());
          const id = JSON.parse(r.body).id;
          published.get(c).push(id);
          if (++n % 2000 === 0) peakRss = Math.max(peakRss, memKb(srv.pid).rss);
        }
      }));
    }
    const secs = (Date.now() - t0) / 1000;
    const mStorm = await metricsText(srv.base);
    t.diagnostic(`cpu: rt-server ${cpuSeconds(srv.pid) - cpu0.rt} s, redis ${cpuSeconds(redis.pid) - cpu0.redis} s, node ${process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6 - cpu0.node} s; ` +
      `backlog reads ${m(mStorm, 'rt_backlog_reads_total') - m(m0, 'rt_backlog_reads_total')}, mirror decisions ${m(mStorm, 'rt_mirror_decisions_total') - m(m0, 'rt_mirror_decisions_total')}, ` +
      `rereads ${m(mStorm, 'rt_rereads_total') - m(m0, 'rt_rereads_total')}`);
    t.diagnostic(`storm: ${n} publishes to ${C} channels in ${secs.toFixed(1)} s (${(n / secs).toFixed(0)}/s, ` +
      `${SCALE.stormConcurrency} connections), ${m(mStorm, 'rt_subscribed_channels')} channels subscribed, ${answers} poll answers so far`);
    // Every channel's last id reaches every poller that covers it.
    const finalId = (c) => Math.max(...published.get(c));
    await waitFor(() => chans.every((c) => last.get(c) === finalId(c)) && sample.every((c) => sampleLast.get(c) === finalId(c)),
      { timeout: 60000, interval: 100, what: 'every poller at its channels\' last id' });
    const tDone = (Date.now() - t0) / 1000;
    peakRss = Math.max(peakRss, memKb(srv.pid).rss);
    assert.deepEqual(problems, [], 'no reset, no broken chain, no failed poll');
    for (const c of chans) assert.equal(published.get(c).length, ROUNDS);
    // No stuck poll: every poll is held again (waiting after the last id) or answers.
    await waitFor(async () => m(await metricsText(srv.base), 'rt_held_polls') === groups.length + sample.length,
      { timeout: 10000, what: 'every poller held again after the storm' });
    running = false;
    for (const ka of [...pollConns, ...pubConns]) ka.destroy();
    await Promise.all(loops);
    await waitFor(async () => {
      const x = await metricsText(srv.base);
      return m(x, 'rt_open_polls') === 0 && m(x, 'rt_subscribed_channels') === 0;
    }, { timeout: 15000, what: 'polls closed and subscriptions freed after their linger' });
    await sleep(500);
    const mem2 = memKb(srv.pid);
    t.diagnostic(`all delivered ${tDone.toFixed(1)} s after the storm began; ${answers} poll answers; ` +
      `rss before ${mib(mem0.rss)} MiB, peak ${mib(peakRss)} MiB, after the linger ${mib(mem2.rss)} MiB; subscribed channels back to 0`);
    if (!SANITIZED) assert.ok(mem2.rss - mem0.rss < 150 * 1024, `rss after the storm ${mib(mem2.rss)} MiB vs ${mib(mem0.rss)} MiB before`);
    await assertStillServes(srv.base);
  });
});
