// The promise when Redis loses or rolls back data (PROTOCOL.md version 2): ids never come
// back (max(N + 1, Redis TIME in µs)), every message names its predecessor, and a client
// whose id is not part of the history Redis has now gets a `reset` with reason `lost`,
// never an `ok` that would hide the gap. Also: trim by rank, reasons `behind` / `lost`,
// pub/sub messages that do not continue the chain, version-1 data (INCR ids, no prev).
//
// Each of these fails on a version-1 server (INCR ids, ok iff R[0].id == L + 1, no reason):
// after a flush, an expiry, a restart from an older snapshot or a promotion of a replica
// that missed writes, the new INCR ids 1, 2, 3… reach the client's id again and the server
// answered `ok` with the messages after it, silently losing the ones before.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, after } from 'node:test';
import {
  test, startStack, startRedis, withServer, assertCleanShutdown, poll, publishOk, keys, uniqueChannel,
  heldPoll, heldPolls, waitHeld, waitFor, sleep, RedisClient, msg, chain, assertTimeId, assertChain, PUBLISH_LUA_V1,
  assertStillServes, REPO_ROOT,
} from './lib/harness.mjs';

const POLL_TIMEOUT = 2;
let stack, base, redis;

before(async () => {
  stack = await startStack({ pollTimeout: POLL_TIMEOUT });
  base = stack.base;
  redis = stack.client;
});
after(async () => { await stack?.stop(); });

async function publishAll(srvBase, c, payloads, opts) {
  const ids = [];
  for (const p of payloads) ids.push(await publishOk(srvBase, c, p, opts));
  return ids;
}

const healthy = async (srvBase) => {
  const r = await fetch(srvBase + '/healthz').catch(() => null);
  if (!r) return false;
  await r.arrayBuffer();
  return r.status === 200;
};

test('FLUSHALL, then more publishes than the client\'s position: reset lost', async () => {
  const c = uniqueChannel('flush');
  const old = await publishAll(base, c, [1, 2, 3]);
  const seen = await poll(base, [[c, 0]]);
  assert.deepEqual(seen.json[c].msg.map((m) => [m.id, m.payload]), [[old[0], 1], [old[1], 2], [old[2], 3]]);
  assert.equal(await redis.command('FLUSHALL'), 'OK');
  const fresh = await publishAll(base, c, ['n1', 'n2', 'n3', 'n4', 'n5', 'n6']);
  const r = await poll(base, [[c, old[2]]]);
  assert.deepEqual(r.json, { [c]: { status: 'reset', id: fresh[5], reason: 'lost', msg: [msg(fresh[5], fresh[4], 'n6')] } });
  assert.ok(fresh[0] > old[2], 'the new history starts above every old id');
  // After the reset the client follows the new history.
  const next = await poll(base, [[c, fresh[4]]]);
  assert.deepEqual(next.json, { [c]: { status: 'ok', msg: [msg(fresh[5], fresh[4], 'n6')] } });
});

test('keys expired (PEXPIRE 1 ms), then republished: reset lost', async () => {
  const c = uniqueChannel('expire');
  const k = keys(c);
  const old = await publishAll(base, c, ['a', 'b']);
  assert.equal(await redis.command('PEXPIRE', k.id, 1), 1);
  assert.equal(await redis.command('PEXPIRE', k.backlog, 1), 1);
  await waitFor(async () => (await redis.command('EXISTS', k.id, k.backlog)) === 0, { what: 'the keys to expire' });
  const fresh = await publishAll(base, c, ['c', 'd', 'e', 'f']);
  const r = await poll(base, [[c, old[1]]]);
  assert.deepEqual(r.json, { [c]: { status: 'reset', id: fresh[3], reason: 'lost', msg: [msg(fresh[3], fresh[2], 'f')] } });
  // The new history links from 0: a client that took a reset to 0 gets all of it.
  const all = await poll(base, [[c, 0]]);
  assert.deepEqual(all.json, { [c]: { status: 'ok', msg: chain(fresh, ['c', 'd', 'e', 'f']) } });
});

test('restart from an older snapshot (3 writes lost, then 5 publishes): reset lost for the client at its newest id', { timeout: 60000 }, async () => {
  let r0 = await startRedis();
  try {
    await withServer({ redisUrl: r0.url, pollTimeout: POLL_TIMEOUT }, async (srv) => {
      const c = uniqueChannel('snapshot');
      const cli = await RedisClient.connect(r0.port);
      const a = await publishAll(srv.base, c, [1, 2, 3]);
      assert.equal(await cli.command('SAVE'), 'OK');
      cli.close();
      const dump = path.join(r0.dir, 'dump.rdb'), saved = path.join(r0.dir, 'saved.rdb');
      fs.copyFileSync(dump, saved);
      a.push(...await publishAll(srv.base, c, [4, 5, 6]));
      // The client sees them.
      const seen = await poll(srv.base, [[c, a[2]]]);
      assert.deepEqual(seen.json[c].msg.map((m) => [m.id, m.payload]), [[a[3], 4], [a[4], 5], [a[5], 6]]);
      const last = a[5];

      await r0.kill();  // kill -9: nothing saved at exit
      fs.copyFileSync(saved, dump);
      r0 = await startRedis({ port: r0.port, dir: r0.dir });
      const cli2 = await RedisClient.connect(r0.port);
      try {
        assert.equal(await cli2.command('GET', keys(c).id), String(a[2]), 'Redis came back with the snapshot\'s N');
      } finally { cli2.close(); }
      await waitFor(() => healthy(srv.base), { timeout: 15000, what: 'rt-server healthy on the restarted Redis' });
      const b = await publishAll(srv.base, c, ['r1', 'r2', 'r3', 'r4', 'r5']);
      const r = await poll(srv.base, [[c, last]]);
      assert.deepEqual(r.json, { [c]: { status: 'reset', id: b[4], reason: 'lost', msg: [msg(b[4], b[3], 'r5')] } });
      assert.ok(b[0] > last, `ids never come back: ${b[0]} after ${last}`);
      // A lost write's id is lost too; the snapshot's N still continues.
      const r2 = await poll(srv.base, [[c, a[4]]]);
      assert.equal(r2.json[c].status, 'reset');
      assert.equal(r2.json[c].reason, 'lost');
      const r3 = await poll(srv.base, [[c, a[2]]]);
      assert.deepEqual(r3.json, { [c]: { status: 'ok', msg: chain(b, ['r1', 'r2', 'r3', 'r4', 'r5'], a[2]) } });
    });
  } finally {
    await r0.stop();
  }
});

test('replica promoted after it missed writes: the client gets reset lost, never ok', { timeout: 60000 }, async () => {
  const master = await startRedis();
  const replica = await startRedis({ args: ['--replicaof', '127.0.0.1', master.port] });
  const rep = await RedisClient.connect(replica.port);
  try {
    await withServer({ redisUrl: master.url, pollTimeout: POLL_TIMEOUT }, async (s1) => {
      const c = uniqueChannel('failover');
      const a = await publishAll(s1.base, c, [1, 2, 3]);
      await waitFor(async () => (await rep.command('GET', keys(c).id)) === String(a[2]),
        { timeout: 15000, what: 'the replica to receive the first writes' });
      // The replica stops replicating here (a partition, then Sentinel promotes it).
      assert.equal(await rep.command('REPLICAOF', 'NO', 'ONE'), 'OK');
      // The old master takes more writes, and the client sees them.
      a.push(...await publishAll(s1.base, c, [4, 5, 6]));
      const seen = await poll(s1.base, [[c, a[2]]]);
      assert.deepEqual(seen.json[c].msg.map((m) => [m.id, m.payload]), [[a[3], 4], [a[4], 5], [a[5], 6]]);
      const last = a[5];
      assert.equal(await rep.command('GET', keys(c).id), String(a[2]), 'the promoted replica never got them');

      await withServer({ redisUrl: replica.url, pollTimeout: POLL_TIMEOUT }, async (s2) => {
        // Before any new write: the client's id is above N.
        const r0 = await poll(s2.base, [[c, last]]);
        assert.deepEqual(r0.json, { [c]: { status: 'reset', id: a[2], reason: 'lost', msg: [msg(a[2], a[1], 3)] } });
        // New writes on the promoted replica: still lost for the client, never ok.
        const b = await publishAll(s2.base, c, ['p1', 'p2', 'p3', 'p4', 'p5']);
        assert.ok(b[0] > last, 'ids never come back');
        for (const m of [last, a[3], a[4]]) {
          const r = await poll(s2.base, [[c, m]]);
          assert.deepEqual(r.json, { [c]: { status: 'reset', id: b[4], reason: 'lost', msg: [msg(b[4], b[3], 'p5')] } }, `m=${m}`);
        }
        // A held poll at the client's id on the promoted replica: woken by a publish, with a reset.
        const held = await heldPoll(s2.base, [[c, b[4]]]);
        const b5 = await publishOk(s2.base, c, 'p6');
        assert.deepEqual((await held.response).json, { [c]: { status: 'ok', msg: [msg(b5, b[4], 'p6')] } });
        const r = await poll(s2.base, [[c, last]]);
        assert.equal(r.json[c].reason, 'lost');
      });
    });
  } finally {
    rep.close();
    await replica.stop();
    await master.stop();
  }
});

test('trim by rank: backlog 10, 25 publishes; ok from the 15th id, behind from the 14th, lost for an id never issued', async () => {
  const c = uniqueChannel('rank');
  const payloads = Array.from({ length: 25 }, (_, i) => i + 1);
  const ids = await publishAll(base, c, payloads, { backlog: 10 });
  assert.equal(await redis.command('ZCARD', keys(c).backlog), 10);
  const kept = (await redis.command('ZRANGE', keys(c).backlog, '0', '-1')).map((s) => JSON.parse(s).id);
  assert.deepEqual(kept, ids.slice(15), 'the newest 10 are kept');
  // ok from the 15th id (index 14): its successor is the oldest kept.
  const ok = await poll(base, [[c, ids[14]]]);
  assert.deepEqual(ok.json, { [c]: { status: 'ok', msg: chain(ids.slice(15), payloads.slice(15), ids[14]) } });
  const ok2 = await poll(base, [[c, ids[20]]]);
  assert.deepEqual(ok2.json, { [c]: { status: 'ok', msg: chain(ids.slice(21), payloads.slice(21), ids[20]) } });
  const newest = [msg(ids[24], ids[23], 25)];
  // behind from the 14th (index 13) down, and for m=0.
  for (const m of [ids[13], ids[5], ids[0], 0]) {
    const r = await poll(base, [[c, m]]);
    assert.deepEqual(r.json, { [c]: { status: 'reset', id: ids[24], reason: 'behind', msg: newest } }, `m=${m}`);
  }
  // An id inside the span that was never issued: not part of the history.
  assert.ok(ids[21] - ids[20] > 1, 'ids are not dense');
  for (const m of [ids[20] + 1, ids[24] - 1, ids[15] + 1]) {
    const r = await poll(base, [[c, m]]);
    assert.deepEqual(r.json, { [c]: { status: 'reset', id: ids[24], reason: 'lost', msg: newest } }, `m=${m}`);
  }
});

test('m=0 on a channel whose first message is still kept: ok with all of them, the first with prev 0', async () => {
  const c = uniqueChannel('first');
  const payloads = ['one', { two: 2 }, [3]];
  const ids = await publishAll(base, c, payloads, { backlog: 10 });
  const r = await poll(base, [[c, 0]]);
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: chain(ids, payloads, 0) } });
  assert.equal(r.json[c].msg[0].prev, 0);
});

test('a held poll that receives a pub/sub message with a foreign prev reads again: reset; the message is never passed on', async () => {
  const c = uniqueChannel('forged');
  const k = keys(c);
  const ids = await publishAll(base, c, [1, 2, 3]);
  const L = ids[2];

  // 1. Written into Redis and published (another writer's history): id L + 1 would pass the
  //    version-1 rule, but its prev names ids[0], not L.
  const held = await heldPoll(base, [[c, L]]);
  const forged = `{"id":${L + 1},"prev":${ids[0]},"payload":"forged"}`;
  await redis.command('SET', k.id, String(L + 1));
  await redis.command('ZADD', k.backlog, String(L + 1), forged);
  assert.equal(await redis.command('PUBLISH', k.pubsub, forged), 1, 'the server is subscribed');
  const r = await held.response;
  assert.equal(r.json[c]?.status, 'reset', `answered ${r.body}`);
  assert.deepEqual(r.json, { [c]: { status: 'reset', id: L + 1, reason: 'lost', msg: [JSON.parse(forged)] } });

  // 2. Only on pub/sub (Redis does not hold it): never delivered; the next real message is.
  const c2 = uniqueChannel('forged2');
  const k2 = keys(c2);
  const ids2 = await publishAll(base, c2, ['x', 'y']);
  const held2 = await heldPoll(base, [[c2, ids2[1]]]);
  const forged2 = `{"id":${ids2[1] + 1},"prev":${ids2[0]},"payload":"forged"}`;
  assert.equal(await redis.command('PUBLISH', k2.pubsub, forged2), 1);
  await sleep(300);
  const real = await publishOk(base, c2, 'real');
  const r2 = await held2.response;
  assert.deepEqual(r2.json, { [c2]: { status: 'ok', msg: [msg(real, ids2[1], 'real')] } });
  assert.ok(!r2.body.includes('"payload":"forged"'), 'the forged message is not passed on');
});

test('version-1 data keeps working: INCR ids without prev are served, and the next version-2 publish links to them', async () => {
  const c = uniqueChannel('v1');
  const k = keys(c);
  const v1publish = (payload) => redis.command('EVAL', PUBLISH_LUA_V1, '3', k.id, k.backlog, k.pubsub, JSON.stringify(payload), '100', '0');
  assert.deepEqual([await v1publish('a'), await v1publish('b'), await v1publish('c')], [1, 2, 3]);
  const r = await poll(base, [[c, 0]]);
  // Relayed verbatim: no prev member (it counts as id - 1).
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [{ id: 1, payload: 'a' }, { id: 2, payload: 'b' }, { id: 3, payload: 'c' }] } });
  const r1 = await poll(base, [[c, 1]]);
  assert.deepEqual(r1.json, { [c]: { status: 'ok', msg: [{ id: 2, payload: 'b' }, { id: 3, payload: 'c' }] } });
  // A version-1 channel's state channel logic: a gap is still behind.
  const v1state = uniqueChannel('v1state');
  const ks = keys(v1state);
  for (const p of [1, 2, 3]) await redis.command('EVAL', PUBLISH_LUA_V1, '3', ks.id, ks.backlog, ks.pubsub, String(p), '1', '0');
  const rs = await poll(base, [[v1state, 1]]);
  assert.deepEqual(rs.json, { [v1state]: { status: 'reset', id: 3, reason: 'behind', msg: [{ id: 3, payload: 3 }] } });

  // A held poll at 3 is woken by the next (version-2) publish, which names 3 as its prev.
  const held = await heldPoll(base, [[c, 3]]);
  const id = await publishOk(base, c, 'v2');
  assertTimeId(id);
  assert.deepEqual((await held.response).json, { [c]: { status: 'ok', msg: [msg(id, 3, 'v2')] } });
  const r2 = await poll(base, [[c, 2]]);
  assert.deepEqual(r2.json, { [c]: { status: 'ok', msg: [{ id: 3, payload: 'c' }, msg(id, 3, 'v2')] } });
  // A version-1 publisher still running after that continues the chain (N + 1, prev = id - 1).
  assert.equal(await v1publish('old writer'), id + 1);
  const r3 = await poll(base, [[c, id]]);
  assert.deepEqual(r3.json, { [c]: { status: 'ok', msg: [{ id: id + 1, payload: 'old writer' }] } });
});

test('publish.lua keeps msg_id and the backlog expiring together (KEEPTTL), and refuses a msg_id that is not an integer', async () => {
  const c = uniqueChannel('ttl');
  const k = keys(c);
  const lua = fs.readFileSync(path.join(REPO_ROOT, 'server/lua/publish.lua'), 'utf8');
  const run = (payload, ttl) => redis.command('EVAL', lua, '3', k.id, k.backlog, k.pubsub, JSON.stringify(payload), '100', String(ttl));
  const a = await run('a', 600);
  const b = await run('b', 0);  // ttl 0 adds no expiry, and must not remove one either
  assert.ok(b > a);
  const idTtl = await redis.command('TTL', k.id), backlogTtl = await redis.command('TTL', k.backlog);
  assert.ok(idTtl > 0 && idTtl <= 600, `msg_id TTL ${idTtl}`);
  assert.ok(backlogTtl > 0 && backlogTtl <= 600, `backlog TTL ${backlogTtl}`);
  // A foreign writer's msg_id that is not an id: an error reply, nothing written.
  const bad = uniqueChannel('badid');
  const kb = keys(bad);
  await redis.command('SET', kb.id, '12.5');
  await assert.rejects(redis.command('EVAL', lua, '3', kb.id, kb.backlog, kb.pubsub, '1', '100', '0'), /msg_id is not an integer/);
  assert.equal(await redis.command('GET', kb.id), '12.5');
  assert.equal(await redis.command('ZCARD', kb.backlog), 0);
});

// README's publishers, run as README shows them (the code blocks are taken from README.md:
// one place for them), against this file's Redis; rt-server must serve what they publish.
function readmeBlock(lang) {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = text.slice(text.indexOf('## Publishing from another backend'));
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(section);
  assert.ok(m, `README.md has a ${lang} block in "Publishing from another backend"`);
  return m[1];
}

function withPort(code, port) {
  assert.equal(code.split('port=6379').length + code.split('port: 6379').length - 2, 1, 'one Redis port in the snippet');
  return code.replace('port=6379', `port=${port}`).replace('port: 6379', `port: ${port}`);
}

function run(cmd, args, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input);
  });
}

// Debian's interpreter (python3-redis lives in its dist-packages), not a pyenv shim.
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

test('README\'s Python publisher (redis-py) publishes what rt-server serves', async () => {
  const code = withPort(readmeBlock('python'), stack.redis.port);
  const held = await heldPoll(base, [['thread.42', 0], ['stickers.image.7', 0]]);
  const more = `\nimport sys\nprint(publish("thread.42", {"n": 2}))\nprint(publish("thread.42", {"n": 3}))\n`;
  const out = await run(PYTHON, ['-'], code + more);
  assert.equal(out.code, 0, `python3 failed: ${out.stderr}`);
  const [id2, id3] = out.stdout.trim().split('\n').map(Number);
  assertTimeId(id2);
  const first = await held.response;  // woken by the first publish (either channel's)
  assert.equal(first.status, 200);
  for (const e of Object.values(first.json)) assert.equal(e.status, 'ok', first.body);
  assert.ok(Object.keys(first.json).length >= 1, first.body);
  const thread = await poll(base, [['thread.42', 0]]);
  const msgs = thread.json['thread.42'].msg;
  assert.deepEqual(msgs.map((m) => m.payload), [{ text: 'hello from Django' }, { n: 2 }, { n: 3 }]);
  assertChain(msgs, 0, 'thread.42');
  assert.deepEqual(msgs.slice(1).map((m) => m.id), [id2, id3]);
  const st = await poll(base, [['stickers.image.7', 0]]);
  assert.deepEqual(st.json['stickers.image.7'].msg.map((m) => [m.prev, m.payload]), [[0, { heart: 4 }]]);
  assert.equal(await redis.command('ZCARD', keys('stickers.image.7').backlog), 1, 'a state channel');
  assert.ok(await redis.command('TTL', keys('thread.42').id) > 0, 'the default ttl is set');
});

test('README\'s Ruby publisher (redis-rb) publishes what rt-server serves, also after SCRIPT FLUSH', async () => {
  const code = withPort(readmeBlock('ruby'), stack.redis.port);
  const c = uniqueChannel('ruby');
  const held = await heldPoll(base, [[c, 0]]);
  const more = `\nputs rt_publish("${c}", { "from" => "rails" })\n` +
    `REDIS.script(:flush)\nputs rt_publish("${c}", [1, 2], backlog: 1)\n`;
  const out = await run('ruby', ['-'], code + more);
  assert.equal(out.code, 0, `ruby failed: ${out.stderr}`);
  const [id1, id2] = out.stdout.trim().split('\n').map(Number);
  assertTimeId(id1);
  assert.deepEqual((await held.response).json, { [c]: { status: 'ok', msg: [msg(id1, 0, { from: 'rails' })] } });
  const r = await poll(base, [[c, id1]]);
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [msg(id2, id1, [1, 2])] } });
  assert.ok(await redis.command('TTL', keys(c).id) > 0, 'the default ttl is set');
});

test('after all of it the server still serves', async () => {
  await assertStillServes(base);
});

test('rt-server exits cleanly on SIGTERM with no sanitizer report', async () => {
  await assertCleanShutdown(stack.server);
});
