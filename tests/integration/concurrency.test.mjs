// The central promise under concurrency: a subscriber that always sends back the newest id
// it received sees every id exactly once, in order (PROTOCOL.md "No message is lost"), also
// when messages are published while its poll is being set up. Every answer must continue
// the chain: each message's prev is the id the subscriber had before it.
import assert from 'node:assert/strict';
import { before, after, describe } from 'node:test';
import {
  test, startStack, startServer, assertCleanShutdown, poll, publishOk, uniqueChannel, sleep, assertStillServes,
  assertChain, msg,
} from './lib/harness.mjs';

const POLL_TIMEOUT = 5;
// The same checks against a single-threaded server and one with two worker threads (each
// with its own event loop and Redis connections): the races differ.
// Two instances on one Redis: the protocol is stateless, any instance answers any request,
// so subscribers alternate between them and messages are published through the other one.
const CONFIGS = [
  { label: '', args: [] },
  { label: ' [--threads 2]', args: ['--threads', '2'] },
  { label: ' [two instances]', args: [], instances: 2 },
];
let stack, base, second;
// The server for the n-th request of a client: alternates when there are two instances.
const at = (n) => (second && n % 2 ? second.base : base);
after(async () => { await second?.stop(); await stack?.stop(); });

// A subscriber chaining its last ids over `channels` until `shouldStop(last)` is true.
// Records every message per channel; fails on a reset, a break in the prev chain, a
// duplicate or a non-200.
// `sub.kick()` aborts a poll held while the subscriber already has everything (it was sent
// before the publishers were known to be done): nothing would wake it before the timeout.
function subscriber(name, channels, shouldStop, deadline) {
  const last = Object.fromEntries(channels.map((c) => [c, 0]));
  const seen = Object.fromEntries(channels.map((c) => [c, []]));
  let inflight = null;
  const kick = () => { if (inflight && shouldStop(last)) inflight.abort(); };
  const run = async () => {
  let polls = 0;
  while (!shouldStop(last)) {
    if (Date.now() > deadline) {
      throw new Error(`${name}: deadline passed at ${JSON.stringify(last)} after ${polls} polls`);
    }
    inflight = new AbortController();
    let r;
    try {
      r = await poll(at(polls + name.length), channels.map((c) => [c, last[c]]), { signal: inflight.signal });
    } catch (err) {
      if (err.name === 'AbortError' && shouldStop(last)) break;
      throw err;
    } finally {
      inflight = null;
    }
    polls++;
    assert.equal(r.status, 200, `${name}: poll answered ${r.status} ${r.body}`);
    for (const [c, entry] of Object.entries(r.json)) {
      assert.ok(c in last, `${name}: answer for a channel not asked for: ${c}`);
      assert.equal(entry.status, 'ok', `${name}: ${c} at ${last[c]}: ${JSON.stringify(entry).slice(0, 300)}`);
      assert.ok(entry.msg.length > 0, `${name}: ok entry without messages for ${c}`);
      for (const m of entry.msg) {
        assert.equal(m.prev, last[c], `${name}: ${c} after ${last[c]} got ${m.id} with prev ${m.prev}`);
        assert.ok(m.id > last[c], `${name}: ${c} after ${last[c]} got ${m.id}`);
        last[c] = m.id;
        seen[c].push(m);
      }
    }
  }
  return { seen, polls };
  };
  const done = run();
  done.catch(() => {}); // reported by the caller's Promise.all
  return { done, kick };
}

// One round: start a poll at the channel's newest id, publish one message after `delay`
// (while the server is reading the backlog / subscribing), and require that very message.
async function setupRaceRound(channel, last, round, delay, label) {
  const pending = poll(at(round), [[channel, last]]);
  pending.catch(() => {}); // awaited below
  if (delay === 'immediate') await null;
  else if (delay === 'setImmediate') await new Promise((r) => setImmediate(r));
  else await sleep(delay);
  const id = await publishOk(at(round + 1), channel, { label }, { backlog: 1000 });
  const r = await pending;
  assert.equal(r.status, 200, `${label}: ${r.body}`);
  assert.deepEqual(r.json, { [channel]: { status: 'ok', msg: [msg(id, last, { label })] } },
    `${label}: poll at ${last} must deliver id ${id} published ${delay} after it was sent` +
    ` (answered after ${r.ms} ms)`);
  assert.ok(id > last);
  return id;
}

const DELAYS = ['immediate', 'setImmediate', 0, 1, 2, 3, 5];

for (const cfg of CONFIGS) describe(`rt-server${cfg.label}`, () => {
  before(async () => {
    await second?.stop();
    await stack?.stop();
    second = null;
    stack = await startStack({ pollTimeout: POLL_TIMEOUT, args: cfg.args });
    base = stack.base;
    if (cfg.instances === 2) {
      second = await startServer({ redisUrl: stack.redis.url, pollTimeout: POLL_TIMEOUT, args: cfg.args });
    }
  });

  test(`no loss under concurrency: 4 publishers, 3 channels, 7 chaining subscribers${cfg.label}`, { timeout: 90000 }, async () => {
    const channels = [uniqueChannel('s0'), uniqueChannel('s1'), uniqueChannel('s2')];
    const PUBLISHERS = 4, PER_PUBLISHER = 120;
    const published = Object.fromEntries(channels.map((c) => [c, new Map()]));
    let publishersDone = false;
    let total = 0;
    const final = Object.fromEntries(channels.map((c) => [c, 0]));
    const deadline = Date.now() + 60000;
    const allFinal = (last) => publishersDone && channels.every((c) => last[c] === final[c]);

    // 5 subscribers from the start, 2 joining mid-burst from 0 (the backlog still holds all).
    const subs = [];
    const start = (name) => subs.push(subscriber(name, channels, allFinal, deadline));
    for (let i = 0; i < 5; i++) start(`sub${i}`);
    const publishers = Array.from({ length: PUBLISHERS }, async (_, p) => {
      for (let i = 0; i < PER_PUBLISHER; i++) {
        const c = channels[(p + i) % channels.length];
        const payload = { p, i };
        const id = await publishOk(at(p), c, payload, { backlog: 10000 });
        assert.ok(!published[c].has(id), `id ${id} of ${c} handed out twice`);
        published[c].set(id, payload);
        if (++total === (PUBLISHERS * PER_PUBLISHER) / 3) {
          for (let j = 5; j < 7; j++) start(`late${j}`);
        }
      }
    });
    await Promise.all(publishers);
    for (const c of channels) final[c] = Math.max(...published[c].keys());
    publishersDone = true;
    const doneAt = Date.now();
    for (const s of subs) s.kick();
    assert.equal(subs.length, 7);
    const results = await Promise.all(subs.map((s) => s.done));
    // A subscriber whose wake-up was lost would sit out the poll timeout before catching up.
    const catchUp = Date.now() - doneAt;
    assert.ok(catchUp < (POLL_TIMEOUT - 2) * 1000,
      `subscribers reached the final ids ${catchUp} ms after the last publish (poll timeout ${POLL_TIMEOUT} s)`);

    const ids = {};
    for (const c of channels) ids[c] = [...published[c].keys()].sort((a, b) => a - b);
    assert.equal(channels.reduce((n, c) => n + ids[c].length, 0), PUBLISHERS * PER_PUBLISHER, 'every publish got its own id');
    results.forEach(({ seen }, s) => {
      for (const c of channels) {
        assert.deepEqual(seen[c].map((m) => m.id), ids[c], `subscriber ${s}, ${c}: every id once, in order`);
        assertChain(seen[c], 0, `subscriber ${s}, ${c}`);
        for (const m of seen[c]) assert.deepEqual(m.payload, published[c].get(m.id), `payload of ${c} #${m.id}`);
      }
    });
    const totalPolls = results.reduce((n, r) => n + r.polls, 0);
    assert.ok(totalPolls > 7 * 3, `subscribers polled ${totalPolls} times (expected many chained polls)`);
  });

  test(`a message published while the poll is being set up is never missed (known channels)${cfg.label}`, { timeout: 90000 }, async () => {
    const channels = Array.from({ length: 8 }, () => uniqueChannel('race'));
    await Promise.all(channels.map(async (c, k) => {
      let last = 0;
      for (let round = 0; round < 28; round++) {
        last = await setupRaceRound(c, last, round, DELAYS[(round + k) % DELAYS.length], `${c}#${round}`);
      }
    }));
  });

  test(`a message published while the first poll of a new channel subscribes is never missed${cfg.label}`, { timeout: 90000 }, async () => {
    const workers = Array.from({ length: 8 }, async (_, k) => {
      for (let round = 0; round < 20; round++) {
        const c = uniqueChannel(`fresh${k}-${round}`);
        await setupRaceRound(c, 0, round, DELAYS[(round + k) % DELAYS.length], `${c}`);
      }
    });
    await Promise.all(workers);
  });

  test(`a poll started during a tight publish loop never misses an id${cfg.label}`, { timeout: 90000 }, async () => {
    const c = uniqueChannel('tight');
    let stop = false, latest = 0;
    let failed = false;
    const publisher = (async () => {
      for (let i = 0; i < 400 && !failed; i++) latest = await publishOk(at(i), c, i, { backlog: 10000 });
      stop = true;
    })();
    // Short-lived pollers: each starts at the newest id known from a publish answer (the server
    // may already be further), takes one answer, checks it continues exactly there, and quits.
    let checked = 0;
    const pollers = Array.from({ length: 6 }, async (_, k) => {
      for (let n = k; !stop; n++) {
        const from = latest;
        const r = await poll(at(n), [[c, from]]);
        assert.equal(r.status, 200, r.body);
        if (stop && !r.json[c]) break;
        const entry = r.json[c];
        assert.ok(entry, `poll at ${from} answered ${r.body} while publishing continued`);
        assert.equal(entry.status, 'ok', JSON.stringify(entry).slice(0, 200));
        assertChain(entry.msg, from, `poll at ${from}`);
        checked++;
      }
    });
    // Observe failures at once (the publisher stops), and report them from this test.
    const polled = Promise.all(pollers.map((p) => p.catch((err) => { failed = true; stop = true; throw err; })));
    polled.catch(() => {});
    await publisher;
    await publishOk(base, c, 'sentinel', { backlog: 10000 }); // wakes the polls still held
    await polled;
    assert.ok(checked > 50, `only ${checked} polls were checked`);
  });

  test(`after all of it the server still serves${cfg.label}`, async () => {
    await assertStillServes(base);
  });

  test(`rt-server exits cleanly on SIGTERM with no sanitizer report${cfg.label}`, async () => {
    if (second) await assertCleanShutdown(second);
    await assertCleanShutdown(stack.server);
  });
});
