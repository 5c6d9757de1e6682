// The integration contract (PROTOCOL.md, version 2) against a Redis Cluster: 3 masters + 3
// replicas started by the test (tests/cluster/lib/cluster.mjs), one rt-server on
// `redis+cluster://` with 2 worker threads, channels on every master. A representative
// subset of tests/integration: catch-up, chains, long polls woken across masters, a
// multi-channel poll spanning every master, both reset reasons, state channels, poll
// timeout, fan-out, publishing straight into Redis with publish.lua (SPUBLISH), /healthz and
// /metrics, and the keys landing on the master of their slot.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { before, after } from 'node:test';
import {
  test, startServer, poll, publishOk, heldPoll, msg, chain, assertTimeId, metricsText, metricValue, get,
  assertCleanShutdown, PUBLISH_LUA, REPO_ROOT, assertChain,
} from '../integration/lib/harness.mjs';
import { startCluster, channelsPerMaster, cmd, channelSlot } from './lib/cluster.mjs';

const POLL_TIMEOUT = 1.5;
let cl, server, base, perMaster, masters;

before(async () => {
  cl = await startCluster({ masters: 3, replicas: 1 });
  server = await startServer({ redisUrl: cl.url, pollTimeout: POLL_TIMEOUT, args: ['--threads', '2'] });
  base = server.base;
  ({ channels: perMaster, masters } = await channelsPerMaster(cl, 20, 'ct'));
});
after(async () => {
  if (server) await assertCleanShutdown(server);
  await cl?.stop();
});

// A fresh channel on master `i` (each test takes its own).
const next = (i) => {
  assert.ok(perMaster[i].length, 'enough channels prepared');
  return perMaster[i].shift();
};

test('every master serves channels: keys on the slot master, catch-up, chain', async () => {
  for (let i = 0; i < masters.length; i++) {
    const c = next(i);
    const id1 = await publishOk(base, c, { n: 1 });
    assertTimeId(id1);
    const id2 = await publishOk(base, c, 'two');
    // The keys are on the master of the channel's slot.
    assert.equal(Number(await cmd(masters[i].port, null, 'GET', `channel:{${c}}:msg_id`)), id2);
    assert.equal(await cl.masterPortOf(channelSlot(c)), masters[i].port);
    const r = await poll(base, [[c, 0]]);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [msg(id1, 0, { n: 1 }), msg(id2, id1, 'two')] } });
    const r2 = await poll(base, [[c, id1]]);
    assert.deepEqual(r2.json, { [c]: { status: 'ok', msg: [msg(id2, id1, 'two')] } });
  }
});

test('a multi-channel poll spanning every master answers each channel', async () => {
  const cs = masters.map((_, i) => next(i));
  const ids = [];
  for (const c of cs) ids.push(await publishOk(base, c, c));
  const r = await poll(base, cs.map((c) => [c, 0]));
  assert.equal(r.status, 200);
  const want = {};
  cs.forEach((c, k) => { want[c] = { status: 'ok', msg: [msg(ids[k], 0, c)] }; });
  assert.deepEqual(r.json, want);
  // Up to date everywhere: nothing new, the poll is held until the timeout.
  const t0 = Date.now();
  const r2 = await poll(base, cs.map((c, k) => [c, ids[k]]));
  assert.equal(r2.status, 200);
  assert.deepEqual(r2.json, {});
  assert.ok(Date.now() - t0 >= POLL_TIMEOUT * 1000 - 200, 'held until the poll timeout');
});

test('a held poll over every master is woken by a publish on any of them', async () => {
  for (let i = 0; i < masters.length; i++) {
    const cs = masters.map((_, k) => next(k));
    const ids = [];
    for (const c of cs) ids.push(await publishOk(base, c, 0));
    const { response } = await heldPoll(base, cs.map((c, k) => [c, ids[k]]));
    const id = await publishOk(base, cs[i], { woke: i });
    const r = await response;
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { [cs[i]]: { status: 'ok', msg: [msg(id, ids[i], { woke: i })] } });
  }
});

test('fan-out: many held polls of one channel are all woken', async () => {
  const c = next(1);
  const id0 = await publishOk(base, c, 0);
  const held = [];
  for (let k = 0; k < 8; k++) held.push((await heldPoll(base, [[c, id0]])).response);
  const id = await publishOk(base, c, 'all');
  for (const r of await Promise.all(held)) assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [msg(id, id0, 'all')] } });
});

test('resets: behind (backlog moved on) and lost (an id the channel never had)', async () => {
  const c = next(2);
  const ids = [];
  for (let k = 0; k < 5; k++) ids.push(await publishOk(base, c, k, { backlog: 2 }));
  const r = await poll(base, [[c, ids[0]]]);
  assert.deepEqual(r.json, { [c]: { status: 'reset', id: ids[4], reason: 'behind', msg: [msg(ids[4], ids[3], 4)] } });
  const r2 = await poll(base, [[c, ids[4] + 1000]]);
  assert.deepEqual(r2.json, { [c]: { status: 'reset', id: ids[4], reason: 'lost', msg: [msg(ids[4], ids[3], 4)] } });
  // The keys deleted on the master (as an expiry would): the next publish starts above, a
  // poll at the old id learns it lost history.
  const port = await cl.masterPortOf(channelSlot(c));
  await cmd(port, null, 'DEL', `channel:{${c}}:msg_id`, `channel:{${c}}:msg_backlog`);
  const id = await publishOk(base, c, 'after');
  assert.ok(id > ids[4]);
  const r3 = await poll(base, [[c, ids[4]]]);
  assert.equal(r3.json[c].status, 'reset');
  assert.equal(r3.json[c].reason, 'lost');
  assert.equal(r3.json[c].id, id);
});

test('a state channel (backlog 1) keeps only its newest message', async () => {
  const c = next(0);
  let last = 0;
  for (let k = 0; k < 3; k++) last = await publishOk(base, c, { count: k }, { backlog: 1 });
  const r = await poll(base, [[c, 0]]);
  assert.equal(r.json[c].status, 'reset');
  assert.equal(r.json[c].reason, 'behind');
  assert.deepEqual(r.json[c].msg.map((m) => m.payload), [{ count: 2 }]);
  assert.equal(r.json[c].id, last);
});

test('another backend publishing with publish.lua and "sharded" wakes held polls', async () => {
  const script = fs.readFileSync(PUBLISH_LUA, 'utf8');
  for (let i = 0; i < masters.length; i++) {
    const c = next(i);
    const id0 = await publishOk(base, c, 0);
    const { response } = await heldPoll(base, [[c, id0]]);
    const k = (w) => `channel:{${c}}:${w}`;
    // The cluster publish snippet of the README: EVAL on the channel's master, ARGV[4].
    const id = await cmd(masters[i].port, null, 'EVAL', script, 3, k('msg_id'), k('msg_backlog'), k('pubsub'),
      JSON.stringify({ from: 'backend' }), 100, 0, 'sharded');
    const r = await response;
    assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [msg(Number(id), id0, { from: 'backend' })] } });
  }
});

// README's cluster publisher (the Python block with RedisCluster), run as README shows it.
test('README\'s cluster publisher (redis-py RedisCluster, "sharded") publishes what rt-server serves', async () => {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const block = [...text.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1]).find((b) => b.includes('RedisCluster'));
  assert.ok(block, 'README.md has a Python block with RedisCluster');
  assert.ok(block.includes('host="10.0.0.1", port=7000'), 'the seed in the snippet');
  const code = block.replace('host="10.0.0.1", port=7000', `host="127.0.0.1", port=${masters[1].port}`);
  const cs = masters.map((_, i) => next(i));
  const ids0 = [];
  for (const c of cs) ids0.push(await publishOk(base, c, 0));
  const { response } = await heldPoll(base, cs.map((c, k) => [c, ids0[k]]));
  const more = cs.map((c) => `print(publish(${JSON.stringify(c)}, {"py": ${JSON.stringify(c)}}))\n`).join('');
  const python = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const out = await new Promise((resolve, reject) => {
    const child = spawn(python, ['-'], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    child.on('error', reject);
    child.on('exit', (c) => resolve({ code: c, stdout, stderr }));
    child.stdin.end(code + '\n' + more);
  });
  assert.equal(out.code, 0, `python3 failed: ${out.stderr}`);
  const ids = out.stdout.trim().split('\n').map(Number);
  assert.equal(ids.length, cs.length);
  // Woken by the first of them (SPUBLISH reached rt); later ones may be in the answer too.
  const first = await response;
  assert.equal(first.status, 200);
  assert.ok(first.json[cs[0]], first.body);
  for (const [c, e] of Object.entries(first.json)) {
    const k = cs.indexOf(c);
    assert.deepEqual(e, { status: 'ok', msg: [msg(ids[k], ids0[k], { py: c })] });
  }
  const r = await poll(base, cs.map((c, k) => [c, ids0[k]]));
  cs.forEach((c, k) => {
    assert.deepEqual(r.json[c], { status: 'ok', msg: [msg(ids[k], ids0[k], { py: c })] });
    assertChain(r.json[c].msg, ids0[k], c);
  });
});

test('a chain over many publishes across masters, polled from 0', async () => {
  const cs = masters.map((_, i) => next(i));
  const sent = new Map(cs.map((c) => [c, []]));
  for (let k = 0; k < 30; k++) {
    const c = cs[k % cs.length];
    sent.get(c).push(await publishOk(base, c, k));
  }
  const r = await poll(base, cs.map((c) => [c, 0]));
  for (const c of cs) {
    const ids = sent.get(c);
    assert.deepEqual(r.json[c], { status: 'ok', msg: chain(ids, ids.map((_, j) => j * cs.length + cs.indexOf(c))) });
  }
});

test('/healthz names the masters; /metrics counts; bad input is still a 400', async () => {
  const h = await get(base, '/healthz');
  assert.equal(h.status, 200);
  assert.deepEqual(h.json, { status: 'ok', masters: 3 });
  const text = await metricsText(base);
  for (const name of ['rt_cluster_moved_total', 'rt_cluster_ask_total', 'rt_cluster_map_changes_total',
    'rt_cluster_sunsubscribed_total']) assert.notEqual(metricValue(text, name), undefined, name);
  assert.notEqual(metricValue(text, 'rt_subscribed_channels'), undefined);
  const bad = await get(base, '/rt?c=a&m=x');
  assert.equal(bad.status, 400);
});
