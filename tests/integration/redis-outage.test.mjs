// Redis killed (SIGKILL) and restarted on the same port while polls are held: 503 quickly
// while it is down, no poll left hanging, and full recovery (reads, publishes, and
// pub/sub subscriptions) once it is back.
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import {
  test, startRedis, startServer, assertCleanShutdown, poll, publish, publishOk, heldPolls,
  waitHeld, waitFor, metricsText, uniqueChannel, RedisClient, assertChain,
} from './lib/harness.mjs';

const POLL_TIMEOUT = 2;
let redis, server, base;

before(async () => {
  redis = await startRedis();
  server = await startServer({ redisUrl: redis.url, pollTimeout: POLL_TIMEOUT });
  base = server.base;
});
after(async () => { await server?.stop(); await redis?.stop(); });

function assert503(r, what) {
  assert.equal(r.status, 503, `${what}: ${r.status} ${r.body}`);
  assert.match(r.headers.get('content-type') || '', /^application\/json\b/i, `${what}: Content-Type`);
  assert.ok(r.json && typeof r.json.error === 'string' && r.json.error, `${what}: {"error":...} body, got ${r.body}`);
  assert.ok(r.ms < 1000, `${what}: answered after ${r.ms} ms (want < 1 s)`);
  assertRetryAfter(r, what);
}

// Every 503 of rt tells the client when to retry (whole seconds, RFC 9110).
function assertRetryAfter(r, what) {
  assert.match(r.headers.get('retry-after') || '', /^[1-9][0-9]*$/, `${what}: Retry-After on a 503`);
}

async function health() {
  const r = await fetch(base + '/healthz');
  await r.arrayBuffer();
  if (r.status === 503) assertRetryAfter(r, '/healthz');
  return r.status;
}

// Kills Redis while `held` polls are held; checks that they end within the poll timeout
// and that every endpoint answers 503 promptly while Redis is down; restarts Redis.
async function outage(heldPairs, label) {
  const baseline = await heldPolls(base);
  const held = heldPairs.map((pairs) => {
    const p = poll(base, pairs);
    p.catch(() => {});
    return p;
  });
  await waitHeld(base, (n) => n === baseline + held.length, { what: `${label}: polls held` });

  const killedAt = Date.now();
  await redis.kill();

  // Held polls end (503, or {} at the poll timeout) — never left hanging.
  const ends = held.map((p) => p.then((r) => ({ r, at: Date.now() - killedAt })));
  const limit = POLL_TIMEOUT * 1000 + 1000;
  const settled = await Promise.race([
    Promise.all(ends),
    new Promise((_, rej) => setTimeout(() => rej(new Error(`${label}: held polls still open ${limit} ms after Redis died`)), limit)),
  ]);
  for (const { r, at } of settled) {
    assert.ok(r.status === 503 || (r.status === 200 && r.body.trim() === '{}'),
      `${label}: held poll ended with ${r.status} ${r.body}`);
    if (r.status === 503) assertRetryAfter(r, `${label}: held poll`);
    assert.ok(at <= limit, `${label}: held poll ended ${at} ms after the kill`);
  }

  await waitFor(async () => (await health()) === 503, { timeout: 2000, what: `${label}: /healthz 503` });
  for (let i = 0; i < 3; i++) {
    assert503(await poll(base, [[uniqueChannel('down'), 0]]), `${label}: /rt while Redis is down`);
    assert503(await poll(base, heldPairs[0]), `${label}: /rt (subscribed channel) while Redis is down`);
    assert503(await publish(base, uniqueChannel('down'), '{"lost":true}'), `${label}: /publish while Redis is down`);
  }
  const m = await fetch(base + '/metrics');
  assert.equal(m.status, 200, '/metrics is served while Redis is down');
  await m.text();
  assert.equal(await heldPolls(base), baseline, `${label}: no poll is held while Redis is down`);

  redis = await startRedis({ port: redis.port });
  await waitFor(async () => (await health()) === 200, { timeout: 10000, what: `${label}: /healthz 200 after restart` });
}

// A poll held after recovery must be woken by a publish (proves pub/sub is restored).
async function expectWokenAfterRecovery(channel, label) {
  const client = await RedisClient.connect(redis.port);
  const last = Number(await client.command('GET', `channel:{${channel}}:msg_id`) ?? 0);
  client.close();
  const baseline = await heldPolls(base);
  const pending = poll(base, [[channel, last]]);
  pending.catch(() => {}); // awaited below
  await waitHeld(base, (n) => n === baseline + 1, { what: `${label}: held after recovery` });
  const t0 = Date.now();
  const id = await publishOk(base, channel, { after: label });
  const r = await pending;
  assert.deepEqual(r.json, { [channel]: { status: 'ok', msg: [{ id, prev: last, payload: { after: label } }] } },
    `${label}: held poll after recovery must be woken by the publish`);
  assert.ok(Date.now() - t0 < 1000, `${label}: woken ${Date.now() - t0} ms after the publish`);
}

test('Redis killed mid-poll: 503 while down, nothing hangs, full recovery after restart', { timeout: 60000 }, async () => {
  const a = uniqueChannel('a'), b = uniqueChannel('b');
  let a3;
  for (let i = 1; i <= 3; i++) a3 = await publishOk(base, a, i);
  await outage([[[a, a3]], [[a, a3]], [[a, a3], [b, 0]], [[b, 0]]], 'first outage');

  // The restarted Redis is empty: a client at a3 is told to reset.
  const r = await poll(base, [[a, a3]]);
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(r.json, { [a]: { status: 'reset', id: 0, reason: 'lost', msg: [] } });
  const back = await publishOk(base, a, 'back');
  assert.ok(back > a3, 'ids never come back');
  const r2 = await poll(base, [[a, 0]]);
  assert.deepEqual(r2.json, { [a]: { status: 'ok', msg: [{ id: back, prev: 0, payload: 'back' }] } });
  const r3 = await poll(base, [[a, a3]]);
  assert.deepEqual(r3.json, { [a]: { status: 'reset', id: back, reason: 'lost', msg: [{ id: back, prev: 0, payload: 'back' }] } });

  // Subscriptions restored for channels subscribed before the outage and for new ones.
  await expectWokenAfterRecovery(a, 'channel a (held during the outage)');
  await expectWokenAfterRecovery(b, 'channel b (held during the outage)');
  await expectWokenAfterRecovery(uniqueChannel('new'), 'a new channel');
});

test('a second outage recovers too, and reconnects are counted', { timeout: 60000 }, async () => {
  const c = uniqueChannel('c');
  const id = await publishOk(base, c, 'x');
  await outage([[[c, id]]], 'second outage');
  await expectWokenAfterRecovery(c, 'channel c after the second outage');
  const text = await metricsText(base);
  const name = /^rt_redis_reconnects_total[ {]/m.test(text)
    ? 'rt_redis_reconnects_total'
    : (text.match(/^# TYPE (\S*reconnect\S*) counter/m) || [])[1];
  assert.ok(name, `/metrics has a Redis reconnect counter:\n${text}`);
  const line = text.split('\n').find((l) => l.startsWith(name) && !l.startsWith('#'));
  assert.ok(line && Number(line.trim().split(/\s+/).pop()) >= 2, `${name} counts both reconnects: ${line}`);
});

test('publishes that succeed during a flapping Redis are never lost by the next poll', { timeout: 60000 }, async () => {
  // Publish in a loop while Redis is killed and restarted; every id that was acknowledged
  // with 200 after the restart must be readable in order.
  const c = uniqueChannel('flap');
  const acked = [];
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const r = await publish(base, c, JSON.stringify(acked.length), { backlog: 10000 }).catch(() => null);
      if (r && r.status === 200) acked.push(r.json.id);
      else assert.ok(!r || r.status === 503, `publish during flapping: ${r && r.status} ${r && r.body}`);
    }
  })();
  await waitFor(() => acked.length >= 20, { what: '20 publishes before the kill' });
  await redis.kill();
  await waitFor(async () => (await health()) === 503, { timeout: 2000, what: '/healthz 503' });
  const ackedBeforeRestart = acked.length;
  redis = await startRedis({ port: redis.port });
  await waitFor(async () => (await health()) === 200, { timeout: 10000, what: '/healthz 200' });
  await waitFor(() => acked.length >= ackedBeforeRestart + 20, { what: '20 publishes after the restart' });
  stop = true;
  await loop;
  // Ids never come back, not even from a Redis that restarted empty: they increase across
  // the restart, and the new history is one unbroken chain from prev 0.
  assert.deepEqual(acked, [...acked].sort((x, y) => x - y), 'acked ids increase across the restart');
  const after = acked.slice(ackedBeforeRestart);
  const r = await poll(base, [[c, 0]]);
  assert.deepEqual(r.json[c].msg.map((m) => m.id), after);
  assertChain(r.json[c].msg, 0, 'the history after the restart');
});

test('Redis frozen (SIGSTOP): requests end with 503 instead of hanging; recovery after SIGCONT', { timeout: 60000 }, async () => {
  // "Never a hang": a Redis that accepts connections but never answers must not hold
  // requests forever. Bound used here: poll timeout + 4 s.
  const limit = POLL_TIMEOUT * 1000 + 4000;
  const c = uniqueChannel('frozen');
  const first = await publishOk(base, c, 'before');
  const baseline = await heldPolls(base);
  const held = poll(base, [[c, first]]);
  held.catch(() => {});
  await waitHeld(base, (n) => n === baseline + 1, { what: 'poll held before the freeze' });
  redis.freeze();
  let thawed = false;
  try {
    const t0 = Date.now();
    const within = (p, what) => Promise.race([p, new Promise((_, rej) =>
      setTimeout(() => rej(new Error(`${what}: no answer ${limit} ms into the freeze`)), limit - (Date.now() - t0)))]);
    const [h, r, pub] = await Promise.all([
      within(held, 'poll held at the freeze'),
      within(poll(base, [[c, first], [uniqueChannel('other'), 0]]), 'poll sent during the freeze'),
      within(publish(base, c, '"frozen"'), 'publish during the freeze'),
    ]);
    assert.ok(h.status === 503 || (h.status === 200 && h.body.trim() === '{}'), `held poll: ${h.status} ${h.body}`);
    // With --poll-timeout no longer than the Redis command timeout, {} at the poll timeout
    // is also honest enough: the client re-polls with the same ids.
    assert.ok(r.status === 503 || (r.status === 200 && r.body.trim() === '{}'), `poll during the freeze: ${r.status} ${r.body}`);
    assert.ok(pub.status === 503 || pub.status === 200, `publish during the freeze: ${pub.status} ${pub.body}`);
    const hz = await within(fetch(base + '/healthz').then(async (x) => { await x.text(); return x.status; }), '/healthz during the freeze');
    assert.equal(hz, 503, '/healthz while Redis does not answer');
  } finally {
    redis.thaw();
    thawed = true;
  }
  assert.ok(thawed);
  await waitFor(async () => (await health()) === 200, { timeout: 10000, what: '/healthz 200 after SIGCONT' });
  await expectWokenAfterRecovery(c, 'channel held at the freeze');
  await expectWokenAfterRecovery(uniqueChannel('after-freeze'), 'a new channel after the freeze');
});

test('after all of it the server still serves', async () => {
  assert.equal(await health(), 200);
  const c = uniqueChannel();
  const id = await publishOk(base, c, 'final');
  const r = await poll(base, [[c, 0]]);
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [{ id, prev: 0, payload: 'final' }] } });
  const client = await RedisClient.connect(redis.port);
  try {
    assert.equal(await client.command('GET', `channel:{${c}}:msg_id`), String(id));
  } finally { client.close(); }
});

test('rt-server exits cleanly on SIGTERM with no sanitizer report', async () => {
  await assertCleanShutdown(server);
});
