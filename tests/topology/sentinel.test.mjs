// rt-server with --redis redis+sentinel://...: finding the master through the sentinels
// (tried in turn, with AUTH), ROLE checked on every connect, +switch-master followed, a
// demoted master left, /healthz saying what is going on, and every 503 of the switch with
// Retry-After. Real Redis servers and real sentinels, plus a scripted fake sentinel where a
// test needs a sentinel to say something a real one only says in rare moments.
import assert from 'node:assert/strict';
import { after } from 'node:test';
import {
  test, startRedis, startServer, assertCleanShutdown, sleep, waitFor, uniqueChannel, publish, publishOk, poll,
  freePort, RedisClient, keys,
} from '../integration/lib/harness.mjs';
import { startReplicated, startSentinels, redisCommand, sentinelMaster } from './lib/topology.mjs';
import { startFakeSentinel } from './lib/fake-sentinel.mjs';

const PASSWORD = 'sentinel-test-secret';
const fakes = [];
after(async () => { for (const f of fakes) await f.close(); });

async function healthz(base) {
  const r = await fetch(base + '/healthz');
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text, retryAfter: r.headers.get('retry-after') };
}

// Waits until /healthz answers 200 naming `port` as the master.
async function waitMaster(server, port, timeout = 10000) {
  await waitFor(async () => {
    const h = await healthz(server.base);
    return h.status === 200 && h.json?.master === `127.0.0.1:${port}`;
  }, { timeout, what: `rt-server ${server.port} on the master 127.0.0.1:${port}` });
}

function assertRetryAfter503(r, what) {
  assert.equal(r.status, 503, `${what}: ${r.status} ${r.body ?? r.text}`);
  const ra = r.retryAfter ?? r.headers.get('retry-after');
  assert.match(ra || '', /^[1-9][0-9]*$/, `${what}: Retry-After`);
}

let rep, sen;

test('real sentinels with AUTH everywhere: the master is found and named by /healthz; ?db=N', { timeout: 60000 }, async () => {
  rep = await startReplicated({ replicas: 2, password: PASSWORD });
  sen = await startSentinels({ masterPort: rep.master.port, replicas: 2, password: PASSWORD });
  const server = await startServer({ redisUrl: `${sen.url}?db=2`, pollTimeout: 2 });
  try {
    await waitMaster(server, rep.master.port);
    const c = uniqueChannel('sentinel');
    const held = poll(server.base, [[c, 0]]);
    await sleep(200);
    const id = await publishOk(server.base, c, { via: 'sentinel' });
    const r = await held;
    assert.deepEqual(r.json[c].msg.map((m) => [m.id, m.payload]), [[id, { via: 'sentinel' }]]);
    // The message is in db 2 of the master.
    const cl = await RedisClient.connect(rep.master.port);
    try {
      await cl.command('AUTH', PASSWORD);
      await cl.command('SELECT', '2');
      assert.equal(Number(await cl.command('GET', keys(c).id)), id);
    } finally {
      cl.close();
    }
    // The password never shows in the log.
    const own = server.log().split('\n').filter((l) => !l.startsWith('# ')).join('\n');  // the harness's command line
    assert.ok(!own.includes(PASSWORD), 'password in rt-server\'s log');
  } finally {
    await assertCleanShutdown(server);
  }
});

test('planned failover (SENTINEL FAILOVER): held polls 503 with Retry-After, links move, publishing goes on', { timeout: 60000 }, async () => {
  // Two worker threads: each follows the sentinels on its own.
  const server = await startServer({ redisUrl: sen.url, pollTimeout: 5, args: ['--threads', '2'] });
  try {
    await waitMaster(server, rep.master.port);
    const c = uniqueChannel('planned');
    const before = await publishOk(server.base, c, 'before');
    const held = poll(server.base, [[c, before]]);
    await sleep(300);
    const oldPort = rep.master.port;
    assert.equal(await redisCommand(sen.sentinels[0].port, PASSWORD, 'SENTINEL', 'FAILOVER', sen.name), 'OK');
    const t0 = Date.now();
    const r = await held;
    // The old master's connections go when rt follows +switch-master: the poll waiting
    // on them is answered 503 (the client retries elsewhere).
    assertRetryAfter503(r, 'held poll across the switch');
    const newPort = await waitFor(async () => {
      const p = await sentinelMaster(sen.sentinels, sen.name, PASSWORD);
      return p && p !== oldPort && p;
    }, { timeout: 20000, what: 'the sentinels name a new master' });
    await waitMaster(server, newPort);
    console.log(`# planned failover: rt on the new master ${Date.now() - t0} ms after SENTINEL FAILOVER`);
    // Each worker thread moves on its own: the other may take a moment longer.
    const afterId = await waitFor(() => publishOk(server.base, c, 'after'), { timeout: 5000, what: 'publish after the switch' });
    const got = await poll(server.base, [[c, before]]);
    assert.equal(got.json[c].status, 'ok', JSON.stringify(got.json));
    assert.deepEqual(got.json[c].msg.map((m) => m.id), [afterId]);
    assert.equal(Number(await redisCommand(newPort, PASSWORD, 'GET', keys(c).id)), afterId);
    assert.match(server.log(), /redis master changed/);
    rep.masterPort = newPort;
  } finally {
    await assertCleanShutdown(server);
  }
});

test('sentinels tried in turn, sentinel AUTH, a replica named as master is refused, +switch-master followed, a demoted master left', { timeout: 60000 }, async () => {
  const a = await startRedis();
  const b = await startRedis({ args: ['--replicaof', '127.0.0.1', String(a.port)] });
  const dead = await freePort();  // nothing listens here: the first sentinel is down
  const fake = await startFakeSentinel({ master: ['127.0.0.1', b.port], user: 'watch', password: 'spw' });
  fakes.push(fake);
  const url = `redis+sentinel://127.0.0.1:${dead},127.0.0.1:${fake.port}/rtmaster?sentinel_user=watch&sentinel_password=spw`;
  const server = await startServer({ redisUrl: url, pollTimeout: 2, ready: 'listening' });
  try {
    // The live sentinel is asked (after the dead one), with its own credentials.
    await waitFor(() => fake.commands.some((c) => c[0] === 'SENTINEL' && c[2] === 'rtmaster'),
      { what: 'the fake sentinel asked for the master' });
    assert.deepEqual(fake.commands[0], ['AUTH', 'watch', 'spw'], 'AUTH first on a sentinel connection');
    await waitFor(() => fake.subscribers.size >= 1, { what: 'subscribed to +switch-master' });
    // It names a replica: ROLE says so, rt stays unavailable and says why.
    await waitFor(() => /not the master/.test(server.log()), { what: 'log: not the master' });
    for (let i = 0; i < 3; i++) {
      const h = await healthz(server.base);
      assertRetryAfter503(h, '/healthz while only a replica is named');
      assert.match(h.json.error, new RegExp(`connecting to master 'rtmaster' at 127\\.0\\.0\\.1:${b.port}`));
      const p = await publish(server.base, uniqueChannel('no-master'), '1');
      assertRetryAfter503(p, 'publish while only a replica is named');
      assertRetryAfter503(await poll(server.base, [[uniqueChannel('no-master'), 0]]), 'poll while only a replica is named');
      await sleep(200);
    }
    assert.equal(await redisCommand(b.port, undefined, 'GET', 'x'), null);
    // +switch-master to the real master: rt moves at once.
    const t0 = Date.now();
    fake.switchMaster('127.0.0.1', a.port);
    await waitMaster(server, a.port, 3000);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 2000, `on the new master ${elapsed} ms after +switch-master`);
    const c = uniqueChannel('switched');
    const id = await publishOk(server.base, c, 'on a');
    assert.equal(Number(await redisCommand(a.port, undefined, 'GET', keys(c).id)), id);

    // The sentinel connections drop (a sentinel restart): rt connects again and subscribes
    // again.
    const subs = fake.commands.filter((x) => x[0] === 'SUBSCRIBE').length;
    fake.dropConnections();
    await waitFor(() => fake.commands.filter((x) => x[0] === 'SUBSCRIBE').length > subs && fake.subscribers.size >= 1,
      { timeout: 5000, what: 'subscribed again after the sentinel dropped the connection' });

    // The master is demoted under rt's connections (REPLICAOF, no announcement): its
    // first write fails READONLY, rt drops the connections and asks again.
    const c2 = await startRedis();
    fake.master = ['127.0.0.1', c2.port];
    assert.equal(await redisCommand(a.port, undefined, 'REPLICAOF', '127.0.0.1', String(c2.port)), 'OK');
    const r = await publish(server.base, c, '"on a demoted master"');
    assertRetryAfter503(r, 'publish on the demoted master');
    await waitMaster(server, c2.port, 5000);
    const id2 = await publishOk(server.base, c, 'on c2');
    assert.equal(Number(await redisCommand(c2.port, undefined, 'GET', keys(c).id)), id2);
    assert.match(server.log(), /READONLY/);
  } finally {
    await assertCleanShutdown(server);
  }
});

test('no sentinel knows the master: /healthz 503 says so, and rt keeps asking until one does', { timeout: 30000 }, async () => {
  const a = await startRedis();
  const fake = await startFakeSentinel({ name: 'other', master: null });
  fakes.push(fake);
  const server = await startServer({ redisUrl: `redis+sentinel://127.0.0.1:${fake.port}/other`, pollTimeout: 2, ready: 'listening' });
  try {
    await waitFor(async () => /looking for the master 'other' \(1 of 1 sentinels reachable\)/.test((await healthz(server.base)).text),
      { what: '/healthz: looking for the master' });
    const h = await healthz(server.base);
    assertRetryAfter503(h, '/healthz');
    fake.master = ['127.0.0.1', a.port];  // no announcement: found by asking again
    await waitMaster(server, a.port, 5000);
    await publishOk(server.base, uniqueChannel('found'), 'found');
  } finally {
    await assertCleanShutdown(server);
  }
});
