// POST /publish (auth, validation, limits, backlog) and publishers that write straight into
// Redis with the seed's keys (MULTI/EXEC, or the shipped publish.lua via EVAL).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { before, after } from 'node:test';
import {
  test, startStack, withServer, startRedis, assertCleanShutdown, poll, publish, publishOk, waitHeld,
  heldPoll, heldPolls, keys, uniqueChannel, redisCli, request, RedisClient, PUBLISH_LUA, TOKEN, assertStillServes,
  assertTimeId, assertChain, msg, chain,
} from './lib/harness.mjs';

const POLL_TIMEOUT = 2;
let stack, base, redis;

before(async () => {
  stack = await startStack({ pollTimeout: POLL_TIMEOUT });
  base = stack.base;
  redis = stack.client;
});
after(async () => { await stack?.stop(); });

function assertError(r, status, what) {
  assert.equal(r.status, status, `${what}: status (body ${r.body})`);
  assert.match(r.headers.get('content-type') || '', /^application\/json\b/i, `${what}: Content-Type`);
  assert.ok(r.json && typeof r.json.error === 'string' && r.json.error.length > 0,
    `${what}: body must be {"error": "..."}, got ${JSON.stringify(r.body)}`);
}

test('publish answers 200 {"id":N} with increasing ids per channel, each message naming its prev', async () => {
  const a = uniqueChannel('a'), b = uniqueChannel('b');
  const r = await publish(base, a, JSON.stringify({ x: 1 }));
  assert.equal(r.status, 200, r.body);
  assert.match(r.headers.get('content-type') || '', /^application\/json\b/i);
  const id1 = r.json.id;
  assertTimeId(id1);
  const id2 = await publishOk(base, a, 'y');
  assert.ok(id2 > id1, 'ids increase');
  assertTimeId(await publishOk(base, b, 'z'), 'first id of another channel');
  assert.equal(await redis.command('GET', keys(a).id), String(id2));
  // Stored as message JSON in the backlog, score = id, byte for byte the canonical layout.
  const members = await redis.command('ZRANGE', keys(a).backlog, '0', '-1', 'WITHSCORES');
  assert.deepEqual(members, [
    `{"id":${id1},"prev":0,"payload":{"x":1}}`, String(id1),
    `{"id":${id2},"prev":${id1},"payload":"y"}`, String(id2),
  ]);
});

test('any JSON value is a payload and round-trips exactly', async () => {
  const c = uniqueChannel();
  const payloads = [
    null, true, false, 0, -12.5, 1e300, 'plain', '', 'üñí©ødé ✓ 😀', 'quote " backslash \\ nl \n',
    [], [1, [2, [3]]], {}, { nested: { deep: [1, 'two', { three: null }] } },
  ];
  for (const p of payloads) await publishOk(base, c, p);
  const r = await poll(base, [[c, 0]]);
  assert.equal(r.status, 200);
  assert.equal(r.json[c].status, 'ok');
  assert.equal(r.json[c].msg.length, payloads.length);
  assertChain(r.json[c].msg, 0);
  assert.deepEqual(r.json[c].msg.map((m) => m.payload), payloads);
  // Leading/trailing whitespace around one JSON value is still one JSON value.
  const ws = await publish(base, c, '  \n {"ws": true} \n');
  assert.equal(ws.status, 200, ws.body);
});

test('big integers, deep nesting and escapes: valid JSON is accepted, nothing crashes', async () => {
  const c = uniqueChannel();
  // Integers beyond 64 bits are what JSON.stringify writes for large doubles (1e20 ->
  // "100000000000000000000"): a JavaScript backend sends them.
  const big = '{"big": 12345678901234567890, "neg": -98765432109876543210, "esc": "\\u00e9\\ud83d\\ude00\\/"}';
  const r = await publish(base, c, big);
  assert.equal(r.status, 200, `valid JSON refused: ${r.body}`);
  const p = await poll(base, [[c, 0]]);
  assert.equal(p.status, 200);
  assert.deepEqual(p.json[c].msg[0].payload, JSON.parse(big));
  // Deep nesting within the body limit: accepted or refused with 400, but never a crash.
  for (const depth of [1000, 30000]) {
    const deep = '['.repeat(depth) + ']'.repeat(depth);
    const d = await publish(base, c, deep);
    assert.ok(d.status === 200 || d.status === 400, `depth ${depth}: ${d.status} ${d.body.slice(0, 100)}`);
  }
  const h = await fetch(base + '/healthz');
  assert.equal(h.status, 200);
});

test('publish without the right token answers 401 and stores nothing', async () => {
  const c = uniqueChannel();
  const cases = [
    ['no Authorization header', { token: null }],
    ['wrong token', { token: TOKEN + 'x' }],
    ['token prefix', { token: TOKEN.slice(0, -1) }],
    ['empty bearer', { token: '' }],
    ['Basic scheme', { token: null, headers: { Authorization: `Basic ${Buffer.from('u:' + TOKEN).toString('base64')}` } }],
    ['token without scheme', { token: null, headers: { Authorization: TOKEN } }],
  ];
  for (const [what, opts] of cases) {
    const r = await publish(base, c, '{"secret": false}', opts);
    assertError(r, 401, what);
  }
  assert.equal(await redis.command('EXISTS', keys(c).id, keys(c).backlog), 0, 'nothing stored');
  const id = await publishOk(base, c, 'authorised');
  const r = await poll(base, [[c, 0]]);
  assert.deepEqual(r.json[c].msg, [msg(id, 0, 'authorised')], 'the first message (prev 0): no id was used');
});

test('invalid JSON body answers 400 and uses no id', async () => {
  const c = uniqueChannel();
  const first = await publishOk(base, c, 'first');
  const bad = ['', ' ', '{', '{"a":1', "{'a':1}", 'nul', 'undefined', 'NaN', '1 2', '{"a":1}x',
    '[1,]', '{"a":1,}', '"unterminated', '\u0000', '{"a":1}{"b":2}'];
  for (const body of bad) {
    const r = await publish(base, c, body);
    assertError(r, 400, `body ${JSON.stringify(body)}`);
  }
  assert.equal(await redis.command('GET', keys(c).id), String(first), 'msg_id unchanged');
  assert.equal(await redis.command('ZCARD', keys(c).backlog), 1, 'backlog unchanged');
  const second = await publishOk(base, c, 'second');
  const r = await poll(base, [[c, 0]]);
  assert.deepEqual(r.json[c], { status: 'ok', msg: chain([first, second], ['first', 'second']) });
});

test("JSON that rt's readers cannot represent answers 400 and stores nothing", async () => {
  // Valid-looking JSON that jansson (the server's and the client's reader) refuses: stored,
  // it would make every answer of the channel unreadable to clients (tests/fuzz found it).
  const c = uniqueChannel();
  for (const body of ['1e400', '[-1e309]', '"\\ud800"', '{"a":"\\udc00"}', '{"\\u0000":1}', '{"a":1,"a":2}',
    '{"a":1,"\\u0061":2}']) {
    const r = await publish(base, c, body);
    assertError(r, 400, `body ${body}`);
  }
  assert.equal(await redis.command('EXISTS', keys(c).id, keys(c).backlog), 0, 'nothing stored');
  for (const body of ['1e308', '"\\ud83d\\ude00"', '{"a":"\\u0000"}', '100000000000000000000'])
    assert.equal((await publish(base, c, body)).status, 200, `body ${body}`);
});

test('body over the default 64 KiB limit answers 413; at the limit it is accepted', async () => {
  const c = uniqueChannel();
  const atLimit = JSON.stringify('x'.repeat(65536 - 2));
  assert.equal(Buffer.byteLength(atLimit), 65536);
  const ok = await publish(base, c, atLimit);
  assert.equal(ok.status, 200, ok.body.slice(0, 200));
  assertTimeId(ok.json.id);
  for (const size of [65537, 200000]) {
    const body = JSON.stringify('y'.repeat(size - 2));
    const r = await publish(base, c, body);
    assert.equal(r.status, 413, `${size} bytes: ${r.body.slice(0, 200)}`);
  }
  assert.equal(await redis.command('GET', keys(c).id), String(ok.json.id), 'msg_id unchanged by refused bodies');
  const r = await poll(base, [[c, 0]]);
  assert.equal(r.json[c].msg[0].payload.length, 65534);
});

test('--max-body sets the body limit', async () => {
  await withServer({ redisUrl: stack.redis.url, pollTimeout: POLL_TIMEOUT, args: ['--max-body', '1024'] }, async (small) => {
    const c = uniqueChannel();
    const at = JSON.stringify('a'.repeat(1022));
    const okr = await publish(small.base, c, at);
    assert.equal(okr.status, 200);
    const over = await publish(small.base, c, JSON.stringify('b'.repeat(1023)));
    // evhttp's own 413 (an HTML page): the body never reaches rt's handler.
    assert.equal(over.status, 413, `1025 bytes with --max-body 1024: ${over.body}`);
    assert.equal(await redis.command('GET', keys(c).id), String(okr.json.id));
  });
});

test('bad backlog values answer 400 and use no id; 1 and 10000 are accepted', async () => {
  const c = uniqueChannel();
  const first = await publishOk(base, c, 'first');
  for (const b of ['0', '10001', '-1', 'abc', '1.5', '', '1e3', '%205', '0x10', '99999999999999999999']) {
    const r = await publish(base, c, '"x"', { backlog: b });
    assertError(r, 400, `backlog=${JSON.stringify(b)}`);
  }
  assert.equal(await redis.command('GET', keys(c).id), String(first), 'msg_id unchanged');
  const second = await publishOk(base, c, 'b10000', { backlog: 10000 });
  assert.ok(second > first);
  await publishOk(base, c, 'b1', { backlog: 1 });
  assert.equal(await redis.command('ZCARD', keys(c).backlog), 1);
});

test('default backlog is 100 and trims older messages', async () => {
  const c = uniqueChannel();
  const ids = [0];
  for (let i = 1; i <= 105; i++) ids.push(await publishOk(base, c, i));
  assert.equal(await redis.command('ZCARD', keys(c).backlog), 100);
  const r = await poll(base, [[c, ids[5]]]);
  assert.equal(r.json[c].status, 'ok');
  assert.deepEqual(r.json[c].msg.map((m) => m.id), ids.slice(6));
  assertChain(r.json[c].msg, ids[5]);
  const reset = await poll(base, [[c, ids[4]]]);
  assert.deepEqual(reset.json[c], { status: 'reset', id: ids[105], reason: 'behind', msg: [msg(ids[105], ids[104], 105)] });
});

test('publish with a missing or invalid channel answers 400', async () => {
  const cases = [
    ['missing c', '/publish'],
    ['empty c', '/publish?c='],
    ['bad char', '/publish?c=a%2Fb'],
    ['space', '/publish?c=a%20b'],
    ['too long', `/publish?c=${'x'.repeat(129)}`],
  ];
  for (const [what, path] of cases) {
    const r = await request(base, path, {
      method: 'POST', body: '"x"',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
    });
    assertError(r, 400, what);
  }
  assertTimeId(await publishOk(base, 'x'.repeat(128), 'longest name'));
});

// A backend that does not use the script: WATCH/MULTI/EXEC with the seed's keys and the
// contract's rules (id = max(N + 1, Redis TIME in µs), prev = N, trim by rank), JSON in
// Python's json.dumps style (spaces after separators).
async function publishViaMulti(client, channel, payload, backlog = 100) {
  const k = keys(channel);
  for (let attempt = 0; attempt < 10; attempt++) {
    await client.command('WATCH', k.id);
    const n = Number((await client.command('GET', k.id)) ?? 0);
    const [sec, usec] = await client.command('TIME');
    const id = Math.max(n + 1, Number(sec) * 1e6 + Number(usec));
    const msg = `{"id": ${id}, "prev": ${n}, "payload": ${JSON.stringify(payload, null, 1).replace(/\n\s*/g, ' ')}}`;
    await client.command('MULTI');
    await client.command('SET', k.id, String(id));
    await client.command('ZADD', k.backlog, String(id), msg);
    await client.command('ZREMRANGEBYRANK', k.backlog, '0', String(-(backlog + 1)));
    await client.command('PUBLISH', k.pubsub, msg);
    const res = await client.command('EXEC');
    if (res !== null) return id;
  }
  throw new Error('MULTI publish kept conflicting');
}

test('message written straight into Redis (MULTI/EXEC) is served and wakes held polls', async () => {
  const c = uniqueChannel('backend');
  const id1 = await publishViaMulti(redis, c, { from: 'python', n: 1 });
  const r = await poll(base, [[c, 0]]);
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [msg(id1, 0, { from: 'python', n: 1 })] } });

  const pending = await heldPoll(base, [[c, id1]]);
  const t0 = Date.now();
  const id2 = await publishViaMulti(redis, c, ['woken']);
  const r2 = await pending.response;
  assert.ok(Date.now() - t0 < 500, `woken after ${Date.now() - t0} ms`);
  assert.deepEqual(r2.json, { [c]: { status: 'ok', msg: [msg(id2, id1, ['woken'])] } });

  // Mixed publishers share one chain.
  const id3 = await publishOk(base, c, 'http');
  const r3 = await poll(base, [[c, id1]]);
  assert.deepEqual(r3.json[c].msg.map((m) => m.id), [id2, id3]);
  assertChain(r3.json[c].msg, id1);
});

test('server/lua/publish.lua run by another backend via EVAL is served and wakes polls', async () => {
  assert.ok(fs.existsSync(PUBLISH_LUA), `${PUBLISH_LUA} must ship in the repository`);
  const c = uniqueChannel('lua');
  const k = keys(c);
  const evalPublish = async (payload, backlog, ttl) => {
    const out = await redisCli(stack.redis.port,
      ['--eval', PUBLISH_LUA, k.id, k.backlog, k.pubsub, ',', payload, String(backlog), String(ttl)]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout.trim(), /^\d+$/, `EVAL returns the id, got ${JSON.stringify(out.stdout)}`);
    return Number(out.stdout.trim());
  };

  const id1 = await evalPublish('{"via":"lua"}', 3, 600);
  assertTimeId(id1);
  const r = await poll(base, [[c, 0]]);
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [msg(id1, 0, { via: 'lua' })] } });
  const ttl = await redis.command('TTL', k.id);
  assert.ok(ttl > 0 && ttl <= 600, `msg_id TTL ${ttl}`);
  const ttlB = await redis.command('TTL', k.backlog);
  assert.ok(ttlB > 0 && ttlB <= 600, `msg_backlog TTL ${ttlB}`);

  const pending = await heldPoll(base, [[c, id1]]);
  const id2 = await evalPublish('[1,2,3]', 3, 600);
  const r2 = await pending.response;
  assert.deepEqual(r2.json, { [c]: { status: 'ok', msg: [msg(id2, id1, [1, 2, 3])] } });

  // Its trim rule is the contract's: the backlog keeps the last `backlog` messages.
  const ids = [0, id1, id2];
  for (let i = 3; i <= 6; i++) ids.push(await evalPublish(String(i), 3, 600));
  assert.equal(await redis.command('ZCARD', k.backlog), 3);
  const r3 = await poll(base, [[c, ids[3]]]);
  assert.deepEqual(r3.json[c], { status: 'ok', msg: chain(ids.slice(4), [4, 5, 6], ids[3]) });
  const r4 = await poll(base, [[c, ids[2]]]);
  assert.deepEqual(r4.json[c], { status: 'reset', id: ids[6], reason: 'behind', msg: [msg(ids[6], ids[5], 6)] });
});

test('--key-prefix, --ttl, a /db Redis URL and RT_PUBLISH_TOKEN from the environment', async () => {
  const token = 'env-token-' + Math.random().toString(36).slice(2);
  await withServer({
    redisUrl: `${stack.redis.url}/2`, pollTimeout: POLL_TIMEOUT, token, tokenViaEnv: true,
    args: ['--key-prefix', 'app1:', '--ttl', '60'],
  }, async (other) => {
    const db2 = await RedisClient.connect(stack.redis.port);
    try {
      await db2.command('SELECT', '2');
      const c = uniqueChannel();
      assertError(await publish(other.base, c, '1'), 401, 'file token is not the env token');
      const id = await publishOk(other.base, c, { db: 2 }, { token });
      const k = keys(c, 'app1:');
      assert.equal(await db2.command('GET', k.id), String(id));
      const ttl = await db2.command('TTL', k.id);
      assert.ok(ttl > 0 && ttl <= 60, `msg_id TTL ${ttl} with --ttl 60`);
      const ttlB = await db2.command('TTL', k.backlog);
      assert.ok(ttlB > 0 && ttlB <= 60, `msg_backlog TTL ${ttlB} with --ttl 60`);
      assert.equal(await redis.command('EXISTS', keys(c).id, k.id), 0, 'nothing in db 0');
      const r = await poll(other.base, [[c, 0]]);
      assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [msg(id, 0, { db: 2 })] } });
      // The default server (db 0, prefix channel:) does not see it.
      const r0 = await poll(base, [[c, id]]);
      assert.deepEqual(r0.json, { [c]: { status: 'reset', id: 0, reason: 'lost', msg: [] } });
    } finally {
      db2.close();
    }
  });
});

test('--redis unix:///path: publish and poll over a unix socket', async () => {
  const r = await startRedis({ unixSocket: true });
  await withServer({ redisUrl: r.unixUrl, pollTimeout: POLL_TIMEOUT }, async (srv) => {
    const c = uniqueChannel('unix');
    const pending = poll(srv.base, [[c, 0]]);
    pending.catch(() => {}); // awaited below
    const id = await publishOk(srv.base, c, { over: 'unix' });
    assert.deepEqual((await pending).json, { [c]: { status: 'ok', msg: [{ id, prev: 0, payload: { over: 'unix' } }] } });
    const direct = await RedisClient.connect(r.port);
    try {
      assert.equal(await direct.command('GET', keys(c).id), String(id), 'stored in the unix-socket Redis');
    } finally { direct.close(); }
  });
  await r.stop();
});

test('a large catch-up (1000 messages, ~4 MB) is delivered complete', async () => {
  const c = uniqueChannel('bulk');
  const k = keys(c);
  const script = fs.readFileSync(PUBLISH_LUA, 'utf8');
  const filler = 'z'.repeat(4000);
  const ids = await Promise.all(Array.from({ length: 1000 }, (_, i) =>
    redis.command('EVAL', script, '3', k.id, k.backlog, k.pubsub, JSON.stringify({ i, filler }), '10000', '0')));
  assert.deepEqual(ids, [...ids].sort((x, y) => x - y), 'ids increase in the order Redis ran the scripts');
  const r = await poll(base, [[c, 0]]);
  assert.equal(r.status, 200);
  assert.equal(r.json[c].status, 'ok');
  assert.equal(r.json[c].msg.length, 1000);
  assertChain(r.json[c].msg, 0);
  r.json[c].msg.forEach((m, i) => { assert.equal(m.id, ids[i]); assert.deepEqual(m.payload, { i, filler }); });
});

test('corrupt data from another backend does not crash the server', async () => {
  const c = uniqueChannel('corrupt');
  const k = keys(c);
  await redis.command('SET', k.id, '2');
  await redis.command('ZADD', k.backlog, '1', 'not json', '2', '{"id":"two","payload":1}');
  const r = await poll(base, [[c, 0]]);
  assert.ok(r.status === 200 || r.status >= 500, `poll over corrupt backlog: ${r.status} ${r.body}`);
  // Garbage on the pub/sub channel while a poll is held.
  const c2 = uniqueChannel('garbage');
  const first = await publishOk(base, c2, 'ok');
  const pending = await heldPoll(base, [[c2, first]]);
  for (const junk of ['', 'garbage', '{"id":999}', '{"id":-1,"payload":0}', '[]']) {
    await redis.command('PUBLISH', keys(c2).pubsub, junk);
  }
  await redis.command('SET', keys(c).id, 'NaN');
  const r2 = await poll(base, [[c, 0]]);
  assert.ok(r2.status === 200 || r2.status >= 500, `poll with a non-integer msg_id: ${r2.status} ${r2.body}`);
  const id = await publishOk(base, c2, 'after junk');
  const held = await pending.response;
  assert.equal(held.status, 200);
  const h = await fetch(base + '/healthz');
  assert.equal(h.status, 200);
  const r3 = await poll(base, [[c2, first]]);
  assert.deepEqual(r3.json, { [c2]: { status: 'ok', msg: [{ id, prev: first, payload: 'after junk' }] } });
});

test('after all of it the server still serves', async () => {
  await assertStillServes(base);
});

test('rt-server exits cleanly on SIGTERM with no sanitizer report', async () => {
  await assertCleanShutdown(stack.server);
});
