// Helpers of the limits-under-load scenarios (tests/integration/limits.test.mjs, and the
// heavier runs of bench/limits.sh): raw keep-alive HTTP connections, slowloris tricklers,
// and a process's memory and descriptors from /proc.

import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';

// A sanitizer build: its allocator keeps freed memory in quarantine (ASan: 256 MiB), so
// RSS says nothing about rt's own memory there; the RSS bounds are checked without it.
export const SANITIZED = /[at]san/.test(process.env.RT_SERVER_BIN || '') || !!process.env.ASAN_OPTIONS || !!process.env.TSAN_OPTIONS;

// Scale of the scenarios: the defaults keep `make test` short; bench/limits.sh raises them.
export const SCALE = {
  tricklers: Number(process.env.RT_LIMITS_TRICKLERS || 2000),
  trickleBound: Number(process.env.RT_LIMITS_TRICKLE_BOUND || 1500),
  trickleSeconds: Number(process.env.RT_LIMITS_TRICKLE_SECONDS || 12),
  fanout: Number(process.env.RT_LIMITS_FANOUT || 1000),
  stormChannels: Number(process.env.RT_LIMITS_STORM_CHANNELS || 10000),
  stormRounds: Number(process.env.RT_LIMITS_STORM_ROUNDS || 3),
  stormConcurrency: Number(process.env.RT_LIMITS_STORM_CONCURRENCY || 32),
  repeatAttacks: Number(process.env.RT_LIMITS_REPEAT_ATTACKS || 0),  // bench only: RSS over repeated attacks
};

// VmRSS / VmHWM (peak) of a process, in KiB.
export function memKb(pid) {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const get = (k) => Number((new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text) || [])[1] || 0);
  return { rss: get('VmRSS'), hwm: get('VmHWM') };
}

// Resets a process's peak RSS (VmHWM) to its current RSS (Linux clear_refs 5).
export function resetPeak(pid) {
  try { fs.writeFileSync(`/proc/${pid}/clear_refs`, '5'); return true; } catch { return false; }
}

// CPU time (user + system) of a process, in seconds.
export function cpuSeconds(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

export function fdCount(pid) {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

export const mib = (kb) => (kb / 1024).toFixed(1);

export function percentile(values, p) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

// One raw keep-alive HTTP/1.1 connection: one request at a time, answers framed by
// Content-Length (rt's are). With `hash`, a body is not kept but hashed (sha256) as it
// arrives, for large fan-outs. `closed` resolves when the connection closes, with
// `byServer` true when the server closed it first.
export class KeepAlive {
  static open(port, opts = {}) {
    return new Promise((resolve, reject) => {
      const sock = net.createConnection({ port, host: '127.0.0.1' });
      sock.once('connect', () => { sock.removeListener('error', reject); resolve(new KeepAlive(sock, port, opts)); });
      sock.once('error', reject);
    });
  }

  constructor(sock, port, { hash = false } = {}) {
    this.sock = sock;
    this.port = port;
    this.hash = hash;
    this.buf = Buffer.alloc(0);
    this.cur = null;  // { resolve, reject, head, length, got, chunks, hasher }
    this.byServer = false;
    this.destroyedByUs = false;
    this.closed = new Promise((resolve) => {
      sock.on('close', () => {
        if (!this.destroyedByUs) this.byServer = true;
        if (this.cur) { const c = this.cur; this.cur = null; c.reject(new Error('connection closed before the answer')); }
        resolve({ byServer: this.byServer });
      });
    });
    sock.on('error', () => {});
    sock.on('data', (d) => this.#data(d));
  }

  get open() { return !this.sock.destroyed; }

  // Sends a request; resolves { status, headers, body (Buffer or null), sha256, length }.
  send(pathAndQuery, { method = 'GET', body, headers = {} } = {}) {
    if (this.cur) return Promise.reject(new Error('a request is in flight'));
    if (this.sock.destroyed) return Promise.reject(new Error('connection closed'));
    const b = body === undefined ? null : Buffer.from(body);
    let head = `${method} ${pathAndQuery} HTTP/1.1\r\nHost: 127.0.0.1:${this.port}\r\n`;
    for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
    if (b) head += `Content-Length: ${b.length}\r\n`;
    head += '\r\n';
    return new Promise((resolve, reject) => {
      this.cur = { resolve, reject, head: null, length: 0, got: 0, chunks: [], hasher: null };
      this.sock.write(b ? Buffer.concat([Buffer.from(head), b]) : head);
    });
  }

  destroy() {
    this.destroyedByUs = true;
    this.sock.destroy();
  }

  #data(d) {
    const c = this.cur;
    if (!c) return;  // nothing asked for: ignore
    if (!c.head) {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const lines = this.buf.toString('latin1', 0, end).split('\r\n');
      const headers = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      c.head = { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0])?.[1]), headers };
      c.length = Number(headers['content-length'] || 0);
      if (this.hash) c.hasher = crypto.createHash('sha256');
      d = this.buf.subarray(end + 4);
      this.buf = Buffer.alloc(0);
    }
    const take = d.subarray(0, c.length - c.got);
    c.got += take.length;
    if (c.hasher) c.hasher.update(take);
    else c.chunks.push(take);
    if (c.got < c.length) return;
    this.cur = null;
    const body = c.hasher ? null : Buffer.concat(c.chunks);
    const sha256 = c.hasher ? c.hasher.digest('hex') : crypto.createHash('sha256').update(body).digest('hex');
    c.resolve({ ...c.head, body, sha256, length: c.length });
  }
}

// Opens `n` KeepAlive connections, `batch` connects at a time.
export async function openMany(port, n, opts = {}, batch = 200) {
  const out = [];
  for (let i = 0; i < n; i += batch) {
    out.push(...await Promise.all(Array.from({ length: Math.min(batch, n - i) }, () => KeepAlive.open(port, opts))));
  }
  return out;
}

// Slowloris: `n` connections, each sending one byte of a request head that never ends,
// every `everyMs`; a connection the server cuts is opened again while the attack runs.
// stop() destroys them all. Counts cuts and each connection's lifetime.
export function slowloris(port, n, { everyMs = 1000 } = {}) {
  const head = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ';
  const st = { opened: 0, cut: 0, refused: 0, lifetimes: [], live: new Set(), running: true };
  const open = () => {
    if (!st.running) return;
    const sock = net.createConnection({ port, host: '127.0.0.1' });
    const conn = { sock, t0: 0, sent: 0 };
    sock.on('connect', () => {
      conn.t0 = Date.now();
      st.opened++;
      st.live.add(conn);
    });
    sock.on('error', () => {});
    sock.on('close', () => {
      const was = st.live.delete(conn);
      if (!st.running) return;
      if (was) {
        st.cut++;
        st.lifetimes.push(Date.now() - conn.t0);
      } else {
        st.refused++;
      }
      setTimeout(open, 10);
    });
  };
  for (let i = 0; i < n; i++) setTimeout(open, Math.floor((i / n) * everyMs));
  const timer = setInterval(() => {
    for (const c of st.live) {
      if (c.sock.destroyed || !c.sock.writable) continue;
      c.sock.write(c.sent < head.length ? head[c.sent] : 'y');
      c.sent++;
    }
  }, everyMs);
  st.stop = () => {
    st.running = false;
    clearInterval(timer);
    for (const c of st.live) c.sock.destroy();
    st.live.clear();
  };
  return st;
}
