// The failover test: 1 master + 2 replicas + 3 sentinels (down-after-milliseconds 1000),
// 2 rt-servers on `redis+sentinel://` behind nginx (deploy/nginx.conf), publishers and 24
// pollers going through nginx; the master is killed (SIGKILL) in the middle of the stream.
//
// Measured and printed (not asserted: the machine is shared): the time until publishes
// succeed again (goal: <= 5 s). Publish latency with and without --publish-min-replicas is
// a benchmark: make bench-replicas.
//
// Checked at every poller (PROTOCOL.md version 2; a message without `prev` counts as
// prev = id - 1): each message once, in order, each naming its predecessor, or a `lost` /
// `behind` reset; nobody stuck (every poller reaches the new master's newest id). With
// --publish-min-replicas 1: every acknowledged message is on the new master, and none is
// missing at a poller that got no reset after it. Without it, an acknowledged message that
// the failover lost before a poller saw it is gone for that poller (nothing is left to tell
// of it: that is what --publish-min-replicas is for); every message the new master has is
// at every poller that got no reset after it.
//
// On a version-2 server the failover loses writes the pollers have seen, on purpose: the
// replication is cut (replicas frozen, their links closed on the master), the master goes
// on alone until pollers have messages the replicas never got, then it is killed and the
// replicas thawed. Every poller that delivered a message the new master's history lacks
// must get a `lost` reset from it (never an `ok` continuing it), and at least one must
// have delivered one.
import assert from 'node:assert/strict';
import { after } from 'node:test';
import {
  test, startServer, sleep, waitFor, uniqueChannel, publishOk, poll, assertCleanShutdown,
} from '../integration/lib/harness.mjs';
import {
  startReplicated, startSentinels, sentinelMaster, startNginx, Poller, Publisher, msgId, backlog, waitCaughtUp,
  cutReplication,
} from './lib/topology.mjs';

const PASSWORD = 'failover-secret';
const POLL_TIMEOUT = 3;
const stacks = [];
after(async () => { for (const s of stacks) await s.stop(); });

async function healthz(base) {
  try {
    const r = await fetch(base + '/healthz', { signal: AbortSignal.timeout(2000) });
    return { status: r.status, body: await r.text(), retryAfter: r.headers.get('retry-after'), at: Date.now() };
  } catch (e) {
    return { status: 0, body: String(e), at: Date.now() };
  }
}

function quantile(xs, q) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
}

// Everything of one run, stopped in reverse order.
async function startStack({ minReplicas }) {
  const rep = await startReplicated({ replicas: 2, password: PASSWORD });
  const sen = await startSentinels({ masterPort: rep.master.port, replicas: 2, password: PASSWORD, downAfterMs: 1000 });
  const args = ['--publish-min-replicas', String(minReplicas)];
  const servers = [];
  for (let i = 0; i < 2; i++) servers.push(await startServer({ redisUrl: sen.url, pollTimeout: POLL_TIMEOUT, args }));
  const nginx = await startNginx({ upstreams: servers.map((s) => s.port) });
  const stack = {
    rep, sen, servers, nginx,
    async stop() {
      await nginx.stop();
      for (const s of servers) await s.stop();
      for (const s of sen.sentinels) await s.stop();
      for (const n of rep.nodes) await n.stop();
    },
  };
  stacks.push(stack);
  return stack;
}

// Whether the server speaks contract version 2 (messages name their predecessor).
async function speaksV2(base) {
  const c = uniqueChannel('probe');
  await publishOk(base, c, 'probe');
  const r = await poll(base, [[c, 0]]);
  return r.json?.[c]?.msg?.[0]?.prev !== undefined;
}

async function failover({ minReplicas }) {
  const { rep, sen, servers, nginx } = await startStack({ minReplicas });
  // With version 2 ids (never issued twice) the failover can also lose writes and still
  // keep the promise: the replication is cut before the master dies, so that the new
  // master lacks the last messages the pollers already have. A version-1 server would
  // issue those ids again (a silent gap by design): there the replicas keep up.
  const loseWrites = await speaksV2(nginx.base);
  const channels = Array.from({ length: 4 }, (_, i) => uniqueChannel(`fo${minReplicas}-${i}`));
  const pollers = Array.from({ length: 24 }, (_, i) => new Poller(nginx.base,
    [channels[i % 4], channels[(i + 1) % 4]], { name: `poller${i}`, pollTimeoutMs: POLL_TIMEOUT * 1000 }).start());
  const publishers = Array.from({ length: 2 }, (_, i) => new Publisher(nginx.base, channels,
    { name: `pub${i}`, intervalMs: 10, retryMs: 50 }).start());
  // /healthz of one rt-server, sampled through the switch.
  const health = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      health.push(await healthz(servers[0].base));
      await sleep(50);
    }
  })();

  let killedAt, newMaster, cut, aloneMs;
  try {
    await sleep(2000);
    const beforeKill = publishers.reduce((n, p) => n + p.acked.length, 0);
    assert.ok(beforeKill > 20, `publishes acknowledged before the kill: ${beforeKill}`);
    if (loseWrites) {
      // The master alone: at least 300 ms, and until a poller has a message published after
      // the cut (with --publish-min-replicas 1 each publisher's next one waits ~1 s for a
      // WAIT that cannot succeed, but its PUBLISH went out before).
      try {
        cut = await cutReplication(rep, channels);
        const cutAt = Date.now();
        await sleep(300);
        await waitFor(() => pollers.some((p) => p.channels.some((c) => p.last.get(c) > cut.get(c))),
          { timeout: 5000, interval: 20, what: 'a poller has a message published after the cut' }).catch(() => {});
        aloneMs = Date.now() - cutAt;
        killedAt = Date.now();
        await rep.master.kill();
      } finally {
        for (const r of rep.replicas) r.thaw();
      }
    } else {
      killedAt = Date.now();
      await rep.master.kill();
    }
    newMaster = await waitFor(async () => {
      const p = await sentinelMaster(sen.sentinels, sen.name, PASSWORD);
      return p && p !== rep.master.port && p;
    }, { timeout: 30000, interval: 100, what: 'the sentinels name a new master' });
    // Both rt-servers follow it.
    for (const s of servers) {
      await waitFor(async () => {
        const h = await healthz(s.base);
        return h.status === 200 && JSON.parse(h.body).master === `127.0.0.1:${newMaster}`;
      }, { timeout: 20000, what: `rt-server ${s.port} on the new master ${newMaster}` });
    }
    await sleep(2000);  // the stream goes on on the new master
  } finally {
    for (const p of publishers) await p.stop();
    watching = false;
    await watcher;
  }
  try {
    await waitCaughtUp(pollers, (c) => msgId(newMaster, PASSWORD, c), { timeout: 20000 });
  } finally {
    for (const p of pollers) await p.stop();
  }
  for (const s of servers) await assertCleanShutdown(s);

  // --- what the publishers saw -----------------------------------------------------------
  const acked = publishers.flatMap((p) => p.acked);
  const failures = publishers.flatMap((p) => p.failures).filter((f) => f.at >= killedAt);
  const ackedAfter = acked.filter((a) => a.at > killedAt).sort((x, y) => x.at - y.at);
  const firstFail = failures.length ? Math.min(...failures.map((f) => f.at)) : killedAt;
  const recovered = ackedAfter.find((a) => a.at > firstFail);
  assert.ok(recovered, 'publishes succeed again after the failover');
  const recoveryMs = recovered.at - killedAt;
  const statuses = {};
  for (const f of failures) statuses[f.status] = (statuses[f.status] || 0) + 1;
  const unconfirmed = publishers.flatMap((p) => p.unconfirmed);
  for (const f of failures) {
    assert.ok(f.status === 503 || f.status === 0, `a failed publish during the failover: ${f.status} ${f.body}`);
  }
  const lat = publishers.flatMap((p) => p.latencies);

  // --- what /healthz said ----------------------------------------------------------------
  const down = health.filter((h) => h.at > killedAt && h.status === 503);
  assert.ok(down.length > 0, '/healthz answered 503 during the switch');
  for (const h of down) {
    assert.match(h.body, /redis unavailable/, `/healthz 503 body: ${h.body}`);
    assert.equal(h.retryAfter, '1', '/healthz 503 with Retry-After');
  }
  const healthyAgain = health.find((h) => h.at > killedAt && h.status === 200 && h.body.includes(`:${newMaster}`));
  assert.ok(healthyAgain, `/healthz 200 naming the new master ${newMaster}`);

  // --- the new master's history of each channel ---------------------------------------------
  // Its whole backlog (backlog=1000, never reached here: the first message, prev 0, is still
  // in it), each message naming the one before, ending at msg_id.
  const kept = new Map();
  for (const c of channels) {
    const b = (await backlog(newMaster, PASSWORD, c)).map((m) => ({ ...m, prev: m.prev ?? m.id - 1 }));
    assert.ok(b.length > 0 && b.length < 1000 && b[0].prev === 0, `${c}: the new master has the whole history (${b.length} messages, first prev ${b[0]?.prev})`);
    for (let i = 1; i < b.length; i++) assert.equal(b[i].prev, b[i - 1].id, `${c}: the new master's history is a chain`);
    assert.equal(b.at(-1).id, await msgId(newMaster, PASSWORD, c), `${c}: the new master's msg_id is its newest message`);
    kept.set(c, new Set(b.map((m) => m.id)));
  }

  // --- every poller's history ------------------------------------------------------------
  const violations = pollers.flatMap((p) => p.violations);
  assert.deepEqual(violations, [], 'each message once, in order, with its predecessor named');
  // Writes the failover lost that pollers had: a message the new master lacks is followed at
  // its poller by the next lost one or by a `lost` reset from it, never by anything else;
  // every reset is such a one (nothing else here gives a poller a reason for one).
  const lostSeen = new Set(), lostBadEnd = [], afterCutSeen = new Set(), afterCutKept = [];
  let lostAtPollers = 0, lostResetsOwed = 0, badResets = [];
  if (loseWrites) {
    for (const c of channels) {
      // Published on the old master after the cut (ids are Redis TIME in µs, one clock here;
      // the new master was named after the kill): none may be on the new master.
      for (const id of kept.get(c)) if (id > cut.get(c) && id < killedAt * 1000) afterCutKept.push(`${c}:${id}`);
    }
    for (const p of pollers) {
      for (const c of p.channels) {
        const h = p.history.get(c), has = kept.get(c);
        for (let i = 0; i < h.length; i++) {
          const x = h[i], next = h[i + 1];
          if (x.reset) {
            if (x.reason !== 'lost' || has.has(x.from)) badResets.push(`${p.name} ${c}: ${JSON.stringify(x)}`);
            continue;
          }
          if (has.has(x.id)) continue;
          lostAtPollers++;
          lostSeen.add(`${c}:${x.id}`);
          if (x.id > cut.get(c) && x.id < killedAt * 1000) afterCutSeen.add(`${c}:${x.id}`);
          if (next && !next.reset && !has.has(next.id)) continue;  // the old master's chain goes on
          lostResetsOwed++;
          if (!next || !next.reset || next.reason !== 'lost' || next.from !== x.id) {
            lostBadEnd.push(`${p.name} ${c}: delivered ${x.id}, which the new master lacks, then ${JSON.stringify(next ?? 'nothing')}`);
          }
        }
      }
    }
  }
  let resets = 0, lostResets = 0, missingExcused = 0, missingLost = 0, missingSilent = [];
  const prevSeen = pollers.some((p) => [...p.history.values()].some((h) => h.some((x) => !x.reset && x.prev !== x.id - 1)));
  for (const p of pollers) {
    assert.equal(p.stuck, 0, `${p.name}: polls that hit the client-side deadline`);
    assert.ok(p.longest < POLL_TIMEOUT * 1000 + 3000, `${p.name}: longest poll ${p.longest} ms`);
    for (const c of p.channels) {
      const rs = p.resets(c);
      resets += rs.length;
      // A reset says "you missed something": here only the failover can cause one (once
      // per channel, or twice when a poll raced the switch), never the steady stream.
      assert.ok(rs.length <= 3, `${p.name} ${c}: ${rs.length} resets ${JSON.stringify(rs.slice(0, 5))}`);
      lostResets += rs.filter((r) => r.reason === 'lost').length;
      const got = new Set(p.delivered(c));
      const ackedHere = acked.filter((a) => a.channel === c).length;
      assert.ok(got.size >= ackedHere / 2, `${p.name} ${c}: ${got.size} messages delivered of ${ackedHere} acknowledged`);
      for (const a of acked) {
        if (a.channel !== c || got.has(a.id)) continue;
        // Excused only by a reset that came while the poller was still before it, or (without
        // --publish-min-replicas; asserted below for with it) by the failover losing it.
        if (rs.some((r) => r.from < a.id)) missingExcused++;
        else if (minReplicas === 0 && !kept.get(c).has(a.id)) missingLost++;
        else missingSilent.push(`${p.name} ${c}: acknowledged ${a.id} (at +${a.at - killedAt} ms) never delivered, no reset`);
      }
    }
  }
  const totalPolls = pollers.reduce((n, p) => n + p.polls, 0);
  const pollStatuses = pollers.reduce((o, p) => { for (const [k, v] of Object.entries(p.statuses)) o[k] = (o[k] || 0) + v; return o; }, {});
  assert.ok((pollStatuses[503] || 0) > 0, 'polls were answered 503 during the switch (held ones when their pub/sub link went)');

  // Acknowledged and replicated: on the new master, all of it.
  let missingOnMaster = [];
  if (minReplicas > 0) {
    for (const c of channels) {
      const ids = new Set((await backlog(newMaster, PASSWORD, c)).map((m) => m.id));
      missingOnMaster.push(...acked.filter((a) => a.channel === c && !ids.has(a.id)).map((a) => `${c}:${a.id}`));
    }
  }

  console.log(`# failover, --publish-min-replicas ${minReplicas}: publishes succeed again ${recoveryMs} ms after the ` +
    `master was killed (first failure at +${firstFail - killedAt} ms; goal <= 5000 ms); ${acked.length} acknowledged ` +
    `(${ackedAfter.length} after the kill), failures after the kill by status ${JSON.stringify(statuses)}, ` +
    `${unconfirmed.length} stored but not confirmed; publish latency p50 ${quantile(lat, 0.5)} ms p99 ` +
    `${quantile(lat, 0.99)} ms; ${pollers.length} pollers, ${totalPolls} polls ${JSON.stringify(pollStatuses)}, ` +
    `${resets} resets (${lostResets} lost), acknowledged messages missing at pollers: ${missingExcused} after a reset, ` +
    `${missingLost} lost by the failover before that poller saw them, ${missingSilent.length} silently; ` +
    `messages carry prev: ${prevSeen}; writes lost on purpose: ${loseWrites}` +
    (loseWrites ? `: master alone for ${aloneMs} ms after the cut, ${afterCutSeen.size} messages published after ` +
      `the cut seen by pollers (${lostSeen.size} seen in all that the new master lacks, ${lostAtPollers} deliveries), ` +
      `${lostResetsOwed} lost resets owed, ${lostBadEnd.length} missing` : ''));

  if (loseWrites) {
    assert.deepEqual(afterCutKept, [], 'no message published after the cut reached the new master');
    assert.ok(afterCutSeen.size > 0, 'pollers delivered messages published after the cut (lost by the failover)');
    assert.deepEqual(lostBadEnd, [], 'every poller that delivered a lost message got a lost reset from it');
    assert.deepEqual(badResets, [], 'every reset is a lost one, from a message the new master lacks');
    assert.equal(lostResets, lostResetsOwed, 'lost resets: exactly the ones owed');
  }
  if (minReplicas > 0) {
    assert.deepEqual(missingOnMaster, [], 'acknowledged (replicated) messages on the new master');
    assert.deepEqual(missingSilent, [], 'no acknowledged message missing at a poller that got no reset after it');
  } else if (prevSeen) {
    // Contract version 2: a failover that lost acknowledged writes shows up as a reset.
    assert.deepEqual(missingSilent, [], 'no acknowledged message silently missing (version 2 ids and prev)');
  }
  return { recoveryMs, lat };
}

test('master killed mid-stream, --publish-min-replicas 1: followed, nothing acknowledged lost, nobody stuck', { timeout: 120000 }, async () => {
  await failover({ minReplicas: 1 });
});

test('master killed mid-stream, --publish-min-replicas 0: followed, never a silent gap, nobody stuck', { timeout: 120000 }, async () => {
  await failover({ minReplicas: 0 });
});
