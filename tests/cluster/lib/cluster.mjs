// Redis Cluster pieces for the tests of tests/cluster/: a cluster of `masters` masters with
// `replicas` replicas each (`redis-server --cluster-enabled yes`, then
// `redis-cli --cluster create ... --cluster-replicas N`) on free loopback ports, every node
// started through the integration harness (logs shown on failure, stopped by PID), plus
// CRC16 key slots and a slot migration (CLUSTER SETSLOT IMPORTING/MIGRATING + MIGRATE).
//
// A node's cluster bus listens on its port + 10000: a node is only given a port whose bus
// port is free too and below 65536 (a node on 58093 would not start).
import net from 'node:net';
import {
  freePort, startRedis, waitFor, RedisClient, redisCli, sleep,
} from '../../integration/lib/harness.mjs';

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

// A free port P (from the OS) whose bus port P + 10000 is free and < 65536.
export async function freeClusterPort() {
  for (let i = 0; i < 200; i++) {
    const p = await freePort();
    if (p + 10000 < 65536 && (await portFree(p + 10000))) return p;
  }
  throw new Error('no free port with a free cluster bus port');
}

// CRC16-CCITT (XModem) mod 16384 of the hash tag or key (the Redis Cluster specification).
export function keySlot(key) {
  let k = Buffer.from(key);
  const open = k.indexOf('{');
  if (open >= 0) {
    const close = k.indexOf('}', open + 1);
    if (close > open + 1) k = k.subarray(open + 1, close);
  }
  let crc = 0;
  for (const b of k) {
    crc ^= b << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc & 16383;
}

// The slot of a channel's keys (PROTOCOL.md section 2: the channel name is the hash tag).
export const channelSlot = (channel) => keySlot(`{${channel}}`);

export async function cmd(port, password, ...args) {
  const c = await RedisClient.connect(port);
  try {
    if (password) await c.command('AUTH', password);
    return await c.command(...args);
  } finally {
    c.close();
  }
}

const asMap = (flat) => {
  const m = {};
  for (let i = 0; i + 1 < flat.length; i += 2) m[flat[i]] = flat[i + 1];
  return m;
};

// CLUSTER SHARDS of `port` as [{ slots: [[a, b], ...], master: {port, id}, replicas: [...] }].
export async function shards(port, password) {
  const out = [];
  for (const s of await cmd(port, password, 'CLUSTER', 'SHARDS')) {
    const m = asMap(s);
    const ranges = [];
    for (let i = 0; i + 1 < m.slots.length; i += 2) ranges.push([Number(m.slots[i]), Number(m.slots[i + 1])]);
    const nodes = m.nodes.map(asMap).map((n) => ({ port: Number(n.port), id: n.id, role: n.role, health: n.health }));
    out.push({
      slots: ranges,
      master: nodes.find((n) => n.role === 'master' && n.health !== 'failed'),
      replicas: nodes.filter((n) => n.role !== 'master'),
    });
  }
  return out;
}

// Starts the cluster; resolves once every node says cluster_state:ok and agrees on the map.
// { nodes: [{port, pid, kill(), stop(), ...}], password, url, seedUrl(n), stop(),
//   masterPortOf(slot), masters() }
export async function startCluster({ masters = 3, replicas = 1, nodeTimeoutMs = 1000, password } = {}) {
  const auth = password ? ['--requirepass', password, '--masterauth', password] : [];
  const nodes = [];
  const stopAll = async () => { for (const n of nodes.reverse()) await n.stop(); };
  try {
    for (let i = 0; i < masters * (1 + replicas); i++) {
      const port = await freeClusterPort();
      nodes.push(await startRedis({
        port,
        password,
        args: [
          '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
          '--cluster-node-timeout', String(nodeTimeoutMs),
          // The other masters go on serving their slots while one shard fails over.
          '--cluster-require-full-coverage', 'no',
          '--repl-diskless-sync', 'yes', '--repl-diskless-sync-delay', '0',
          ...auth,
        ],
      }));
    }
    const r = await redisCli(nodes[0].port, [
      ...(password ? ['-a', password, '--no-auth-warning'] : []),
      '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas', String(replicas), '--cluster-yes',
    ]);
    if (r.code !== 0) throw new Error(`redis-cli --cluster create failed: ${r.stdout}\n${r.stderr}`);
    const want = masters;
    for (const n of nodes) {
      await waitFor(async () => {
        const info = String(await cmd(n.port, password, 'CLUSTER', 'INFO'));
        if (!/cluster_state:ok/.test(info)) return false;
        const s = await shards(n.port, password);
        const withSlots = s.filter((x) => x.slots.length && x.master);
        return withSlots.length === want && (replicas === 0 || withSlots.every((x) => x.replicas.length >= replicas));
      }, { timeout: 30000, interval: 100, what: `cluster node ${n.port} sees ${want} masters and their replicas` });
    }
    if (replicas) {
      for (const n of nodes) {
        const info = String(await cmd(n.port, password, 'INFO', 'replication'));
        if (!/role:slave/.test(info)) continue;
        await waitFor(async () => /master_link_status:up/.test(String(await cmd(n.port, password, 'INFO', 'replication'))),
          { timeout: 20000, what: `replica ${n.port} in sync` });
      }
    }
  } catch (e) {
    await stopAll();
    throw e;
  }
  const cl = {
    nodes,
    password,
    url: clusterUrl(nodes.slice(0, Math.min(2, nodes.length)), password),
    stop: stopAll,
    alive: () => nodes.filter((n) => !n.proc.exitInfo),
    async shards() {
      for (const n of cl.alive()) {
        try { return await shards(n.port, password); } catch { /* next */ }
      }
      throw new Error('no cluster node answers');
    },
    async masters() {
      return (await cl.shards()).filter((s) => s.slots.length && s.master).map((s) => s.master);
    },
    async masterPortOf(slot) {
      for (const s of await cl.shards()) {
        if (s.master && s.slots.some(([a, b]) => slot >= a && slot <= b)) return s.master.port;
      }
      return 0;
    },
    node: (port) => nodes.find((n) => n.port === port),
  };
  return cl;
}

export function clusterUrl(nodes, password) {
  const auth = password ? `:${encodeURIComponent(password)}@` : '';
  return `redis+cluster://${auth}${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
}

// `perMaster` channel names (with `prefix`) on each master's slots: [[names of master 0], ...]
// in the order of `masterList` (from cl.masters()).
export async function channelsPerMaster(cl, perMaster, prefix = 'cl') {
  const masters = await cl.masters();
  const shardsNow = await cl.shards();
  const out = masters.map(() => []);
  const owner = (slot) => shardsNow.findIndex((s) => s.master && s.slots.some(([a, b]) => slot >= a && slot <= b));
  const portIdx = shardsNow.map((s) => masters.findIndex((m) => s.master && m.port === s.master.port));
  const tag = Math.random().toString(36).slice(2, 8);
  for (let i = 0; out.some((l) => l.length < perMaster) && i < 100000; i++) {
    const name = `${prefix}-${tag}-${i}`;
    const m = portIdx[owner(channelSlot(name))];
    if (m >= 0 && out[m].length < perMaster) out[m].push(name);
  }
  return { masters, channels: out };
}

// Moves `slot` from the master on `fromPort` to the one on `toPort`, the way
// redis-cli --cluster reshard does: IMPORTING on the target, MIGRATING on the source, the
// keys moved with MIGRATE in batches of `batch` (`between()` awaited after each batch: the
// traffic runs meanwhile, and ASK redirects happen), then SETSLOT NODE on every master.
export async function migrateSlot(cl, slot, fromPort, toPort, { batch = 1, between = async () => {} } = {}) {
  const pw = cl.password;
  const fromId = String(await cmd(fromPort, pw, 'CLUSTER', 'MYID'));
  const toId = String(await cmd(toPort, pw, 'CLUSTER', 'MYID'));
  await cmd(toPort, pw, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', fromId);
  await cmd(fromPort, pw, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', toId);
  await between();
  for (;;) {
    const keysNow = await cmd(fromPort, pw, 'CLUSTER', 'GETKEYSINSLOT', slot, batch);
    if (!keysNow.length) break;
    const auth = pw ? ['AUTH', pw] : [];
    await cmd(fromPort, pw, 'MIGRATE', '127.0.0.1', toPort, '', 0, 5000, ...auth, 'KEYS', ...keysNow);
    await between();
  }
  // The target first (as redis-cli does), then the source, then every other master.
  await cmd(toPort, pw, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
  await cmd(fromPort, pw, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
  for (const m of await cl.masters()) {
    if (m.port !== toPort && m.port !== fromPort) await cmd(m.port, pw, 'CLUSTER', 'SETSLOT', slot, 'NODE', toId);
  }
}

// Waits until every live node names `port`'s shard as the owner of `slot`.
export async function waitSlotOwner(cl, slot, port, { timeout = 10000 } = {}) {
  await waitFor(async () => {
    for (const n of cl.alive()) {
      const s = await shards(n.port, cl.password).catch(() => null);
      if (!s) return false;
      const owner = s.find((x) => x.master && x.slots.some(([a, b]) => slot >= a && slot <= b));
      if (!owner || owner.master.port !== port) return false;
    }
    return true;
  }, { timeout, interval: 50, what: `slot ${slot} served by ${port} on every node` });
}

export { sleep };
