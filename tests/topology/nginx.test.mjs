// Two rt-servers behind a real nginx running deploy/nginx.conf: pollers and publishers go
// through nginx while each rt-server in turn is stopped (SIGTERM) and started again. Nothing
// acknowledged is lost, no poller is stuck, no message comes twice or out of order, and no
// POST is ever sent to a second server. Also: deploy/rt-server.service passes
// `systemd-analyze verify`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { after } from 'node:test';
import {
  test, startRedis, startServer, assertCleanShutdown, sleep, uniqueChannel, publishOk, poll, waitFor,
  RT_SERVER_BIN, tempDir,
} from '../integration/lib/harness.mjs';
import {
  startNginx, Poller, Publisher, msgId, backlog, waitCaughtUp, DEPLOY_UNIT,
} from './lib/topology.mjs';

const POLL_TIMEOUT = 2;
let redis, servers = [], nginx;
after(async () => {
  await nginx?.stop();
  for (const s of servers) await s?.stop();
  await redis?.stop();
});

test('nginx passes polls and publishes to the rt-servers, with rt\'s answers intact', async () => {
  redis = await startRedis();
  servers = [await startServer({ redisUrl: redis.url, pollTimeout: POLL_TIMEOUT }),
    await startServer({ redisUrl: redis.url, pollTimeout: POLL_TIMEOUT })];
  nginx = await startNginx({ upstreams: servers.map((s) => s.port) });
  const c = uniqueChannel('via-nginx');
  const held = poll(nginx.base, [[c, 0]]);
  await sleep(300);
  const id = await publishOk(nginx.base, c, { hello: 'nginx' });
  const r = await held;
  assert.equal(r.status, 200);
  assert.equal(r.json[c].status, 'ok');
  assert.deepEqual(r.json[c].msg.map((m) => [m.id, m.payload]), [[id, { hello: 'nginx' }]]);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  // A held poll is answered by rt at its timeout ({}), not cut by nginx.
  const t0 = Date.now();
  const idle = await poll(nginx.base, [[c, id]]);
  assert.equal(idle.status, 200);
  assert.equal(idle.body.trim(), '{}');
  assert.ok(Date.now() - t0 >= POLL_TIMEOUT * 1000 - 200, `held for ${Date.now() - t0} ms`);
  // rt's own errors pass through as they are.
  const bad = await poll(nginx.base, [[c, 'x']]);
  assert.equal(bad.status, 400);
  assert.match(bad.json.error, /m/);
});

test('each rt-server in turn stopped (SIGTERM) and started again under load: nothing lost, nobody stuck', { timeout: 120000 }, async () => {
  const channels = Array.from({ length: 4 }, (_, i) => uniqueChannel(`rolling${i}`));
  const pollers = Array.from({ length: 12 }, (_, i) => new Poller(nginx.base,
    [channels[i % 4], channels[(i + 1) % 4]], { name: `poller${i}`, pollTimeoutMs: POLL_TIMEOUT * 1000 }).start());
  const publishers = Array.from({ length: 2 }, (_, i) => new Publisher(nginx.base, channels,
    { name: `pub${i}`, intervalMs: 15 }).start());
  const windows = [];
  try {
    await sleep(1500);
    for (let i = 0; i < servers.length; i++) {
      const s = servers[i];
      const stoppedAt = Date.now();
      const res = await s.stop();
      assert.equal(res.code, 0, `rt-server ${s.port} exit after SIGTERM: ${JSON.stringify(res)}`);
      assert.ok(!res.forced && !res.sanitizer, `rt-server ${s.port} clean stop`);
      await sleep(1500);
      const restartAt = Date.now();
      servers[i] = await startServer({ redisUrl: redis.url, pollTimeout: POLL_TIMEOUT, port: s.port });
      windows.push({ port: s.port, stoppedAt, restartAt });
      await sleep(1500);
    }
  } finally {
    for (const p of publishers) await p.stop();
  }
  try {
    await waitCaughtUp(pollers, (c) => msgId(redis.port, undefined, c), { timeout: 15000 });
  } finally {
    for (const p of pollers) await p.stop();
  }

  const violations = pollers.flatMap((p) => p.violations);
  assert.deepEqual(violations, [], 'the contract held at every poller');
  const acked = publishers.flatMap((p) => p.acked);
  assert.ok(acked.length > 200, `publishes acknowledged: ${acked.length}`);
  // While one server was down the other took every publish: acknowledgements continued.
  for (const w of windows) {
    const during = acked.filter((a) => a.at > w.stoppedAt + 200 && a.at < w.restartAt).length;
    assert.ok(during > 10, `publishes acknowledged while rt-server ${w.port} was down: ${during}`);
  }
  for (const p of pollers) {
    for (const c of p.channels) {
      assert.deepEqual(p.resets(c), [], `${p.name} ${c}: no reset (Redis lost nothing)`);
      const got = new Set(p.delivered(c));
      const missing = acked.filter((a) => a.channel === c && !got.has(a.id)).map((a) => a.id);
      assert.deepEqual(missing, [], `${p.name} ${c}: acknowledged messages missing`);
    }
    assert.equal(p.stuck, 0, `${p.name}: polls that hit the client deadline`);
    assert.ok(p.longest < POLL_TIMEOUT * 1000 + 3000, `${p.name}: longest poll ${p.longest} ms`);
  }
  // No publish attempt ran twice (nginx never passed a POST that reached one server on to
  // the other); every acknowledged one is in the backlog.
  for (const c of channels) {
    const seen = new Set();
    for (const m of await backlog(redis.port, undefined, c)) {
      const k = `${m.payload.p}/${m.payload.seq}/${m.payload.attempt}`;
      assert.ok(!seen.has(k), `${c}: publish attempt ${k} stored twice`);
      seen.add(k);
    }
  }
  const failures = publishers.flatMap((p) => p.failures);
  for (const f of failures) assert.ok(f.status === 503, `a failed publish answered ${f.status} ${f.body}`);
  console.log(`# rolling restart: ${acked.length} publishes acknowledged, ${failures.length} answered 503 ` +
    `(retried), ${pollers.reduce((n, p) => n + p.polls, 0)} polls, statuses ` +
    JSON.stringify(pollers.reduce((o, p) => { for (const [k, v] of Object.entries(p.statuses)) o[k] = (o[k] || 0) + v; return o; }, {})));
});

test('nginx\'s own refusals are JSON 503s with Retry-After (no rt-server reachable)', async () => {
  for (const s of servers) await assertCleanShutdown(s);
  const r = await fetch(nginx.base + '/rt?c=x&m=0');
  assert.equal(r.status, 503);
  assert.equal(r.headers.get('retry-after'), '1');
  assert.ok(typeof (await r.json()).error === 'string');
  servers = [];
});

test('deploy/rt-server.service passes systemd-analyze verify', (t) => {
  const which = spawnSync('systemd-analyze', ['--version']);
  if (which.error) {
    t.skip('systemd-analyze is not installed');
    return;
  }
  // verify also checks that ExecStart's binary exists: point it at the one under test.
  const dir = tempDir('unit-');
  const unit = fs.readFileSync(DEPLOY_UNIT, 'utf8').replaceAll('/usr/local/bin/rt-server', RT_SERVER_BIN);
  assert.notEqual(unit, fs.readFileSync(DEPLOY_UNIT, 'utf8'), 'ExecStart names /usr/local/bin/rt-server');
  fs.writeFileSync(`${dir}/rt-server.service`, unit);
  const r = spawnSync('systemd-analyze', ['verify', `${dir}/rt-server.service`], { encoding: 'utf8' });
  assert.equal(r.status, 0, `systemd-analyze verify: ${r.stdout}${r.stderr}`);
  assert.equal(r.stderr.trim(), '', 'no warnings');
  for (const k of ['DynamicUser=yes', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'LimitNOFILE=']) {
    assert.ok(unit.includes(k), `unit sets ${k}`);
  }
});
