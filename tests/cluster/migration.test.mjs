// A slot migration during traffic: 3 masters + 3 replicas, one rt-server (2 workers),
// publishers on channels of every master and pollers chaining ids over all of them (each
// poller checks every message's `prev`, PROTOCOL.md version 2). Meanwhile the slots of
// some channels move to another master the way `redis-cli --cluster reshard` moves them
// (CLUSTER SETSLOT IMPORTING / MIGRATING, MIGRATE one key at a time with traffic between
// the keys, SETSLOT NODE), so publishes and reads meet ASK and TRYAGAIN, then MOVED, and
// the sharded subscriptions of the moved slots are dropped by Redis (sunsubscribe).
//
// Checked: no poller sees a gap or a repeat; no reset at all (nothing is lost in a
// migration); every acknowledged publish reaches every poller; nobody is left behind (every
// poller reaches each channel's msg_id on its new master) and no poll hangs.
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { test, startServer, sleep, assertCleanShutdown } from '../integration/lib/harness.mjs';
import { Poller, Publisher, waitCaughtUp } from '../topology/lib/topology.mjs';
import { startCluster, channelsPerMaster, cmd, channelSlot, migrateSlot, waitSlotOwner } from './lib/cluster.mjs';

const POLL_TIMEOUT = 2;
let cl, server;
after(async () => {
  if (server) await assertCleanShutdown(server);
  await cl?.stop();
});

test('slots move during traffic: no loss, no gap, no stuck poll', { timeout: 120000 }, async () => {
  cl = await startCluster({ masters: 3, replicas: 1 });
  server = await startServer({ redisUrl: cl.url, pollTimeout: POLL_TIMEOUT, args: ['--threads', '2'] });
  const base = server.base;
  const { channels, masters } = await channelsPerMaster(cl, 3, 'mg');
  const all = channels.flat();
  const pollers = [];
  for (let k = 0; k < 6; k++) {
    // Every poller holds channels of every master (a multi-channel poll across shards).
    pollers.push(new Poller(base, all, { name: `poller${k}`, pollTimeoutMs: POLL_TIMEOUT * 1000 }).start());
  }
  const pubs = [0, 1, 2].map((k) => new Publisher(base, all.filter((_, j) => j % 3 === k),
    { name: `pub${k}`, intervalMs: 10, backlog: 1000 }).start());
  await sleep(800);

  // Move the first channel of each master to the next master, one after the other.
  const moves = [];
  for (let i = 0; i < masters.length; i++) {
    const c = channels[i][0];
    const slot = channelSlot(c);
    const from = masters[i].port, to = masters[(i + 1) % masters.length].port;
    await migrateSlot(cl, slot, from, to, { batch: 1, between: () => sleep(150) });
    await waitSlotOwner(cl, slot, to);
    moves.push({ c, slot, from, to });
    await sleep(300);
  }
  await sleep(1000);
  for (const p of pubs) await p.stop();

  const msgIdOf = async (c) => Number((await cmd(await cl.masterPortOf(channelSlot(c)), null, 'GET', `channel:{${c}}:msg_id`)) ?? 0);
  await waitCaughtUp(pollers, msgIdOf, { timeout: 20000 });
  for (const p of pollers) await p.stop();

  for (const m of moves) assert.equal(await cl.masterPortOf(m.slot), m.to, `${m.c} moved`);
  const acked = pubs.flatMap((p) => p.acked);
  assert.ok(acked.length > 50, `enough traffic (${acked.length} publishes)`);
  const movedAcked = acked.filter((a) => moves.some((m) => m.c === a.channel));
  assert.ok(movedAcked.length > 5, 'publishes on the moving channels');
  for (const p of pollers) {
    assert.deepEqual(p.violations, [], `${p.name}: chain violations`);
    for (const c of all) assert.deepEqual(p.resets(c), [], `${p.name} ${c}: no reset in a migration`);
    for (const a of acked) {
      assert.ok(p.delivered(a.channel).includes(a.id), `${p.name}: acknowledged ${a.channel} ${a.id} delivered`);
    }
    assert.equal(p.stuck, 0, `${p.name}: no poll hung past the poll timeout`);
  }
  const metrics = await (await fetch(base + '/metrics')).text();
  const val = (n) => Number((metrics.match(new RegExp(`^${n} (\\d+)`, 'm')) || [])[1] ?? NaN);
  console.log(`# migration: ${acked.length} publishes (${movedAcked.length} on moving slots), ` +
    `moved ${val('rt_cluster_moved_total')}, ask ${val('rt_cluster_ask_total')}, ` +
    `sunsubscribed ${val('rt_cluster_sunsubscribed_total')}, 503s at pollers ${pollers.reduce((n, p) => n + (p.statuses[503] || 0), 0)}`);
  assert.ok(val('rt_cluster_moved_total') + val('rt_cluster_ask_total') > 0, 'redirects were followed');
});
