// HTTP/1.x details that real clients and backends rely on: HTTP/1.0, pipelining,
// chunked request bodies, Expect: 100-continue (curl's default for bodies over 1 KiB).
import assert from 'node:assert/strict';
import net from 'node:net';
import { before, after } from 'node:test';
import {
  test, startStack, assertCleanShutdown, poll, publishOk, rawHttp, uniqueChannel, keys, TOKEN, assertStillServes,
} from './lib/harness.mjs';

let stack, base, port, redis;

before(async () => {
  stack = await startStack({ pollTimeout: 2 });
  base = stack.base;
  port = stack.server.port;
  redis = stack.client;
});
after(async () => { await stack?.stop(); });

// Reads `count` responses (Content-Length framed) from one connection.
function readResponses(sock, count, timeout = 5000) {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const out = [];
    const timer = setTimeout(() => reject(new Error(`only ${out.length} of ${count} responses: ${JSON.stringify(buf.toString('latin1').slice(0, 300))}`)), timeout);
    const onData = (d) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = buf.toString('latin1', 0, end);
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
        const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        const body = buf.toString('utf8', end + 4, end + 4 + len);
        buf = buf.subarray(end + 4 + len);
        out.push({ status, head, body });
        if (out.length === count) {
          clearTimeout(timer);
          sock.off('data', onData);
          resolve(out);
          return;
        }
      }
    };
    sock.on('data', onData);
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

function connect() {
  return new Promise((resolve, reject) => {
    const s = net.createConnection({ port, host: '127.0.0.1' }, () => resolve(s));
    s.once('error', reject);
  });
}

test('an HTTP/1.0 request is answered', async () => {
  const c = uniqueChannel();
  const id = await publishOk(base, c, 'old client');
  const r = await rawHttp(port, `GET /rt?c=${c}&m=0 HTTP/1.0\r\n\r\n`);
  assert.equal(r.status, 200, r.raw);
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [{ id, payload: 'old client' }] } });
});

test('pipelined requests on one connection are answered in order', async () => {
  const c = uniqueChannel();
  const id = await publishOk(base, c, 'piped');
  const sock = await connect();
  try {
    const responses = readResponses(sock, 3);
    sock.write(`GET /rt?c=${c}&m=0 HTTP/1.1\r\nHost: x\r\n\r\n` +
      'GET /rt?c=a HTTP/1.1\r\nHost: x\r\n\r\n' +
      `GET /rt?c=${c}&m=5 HTTP/1.1\r\nHost: x\r\n\r\n`);
    const [a, b, d] = await responses;
    assert.equal(a.status, 200);
    assert.deepEqual(JSON.parse(a.body), { [c]: { status: 'ok', msg: [{ id, payload: 'piped' }] } });
    assert.equal(b.status, 400);
    assert.equal(d.status, 200);
    assert.deepEqual(JSON.parse(d.body), { [c]: { status: 'reset', id, msg: [{ id, payload: 'piped' }] } });
  } finally {
    sock.destroy();
  }
});

test('a keep-alive connection serves a held poll, then further requests', async () => {
  const c = uniqueChannel();
  const sock = await connect();
  try {
    const first = readResponses(sock, 1);
    sock.write(`GET /rt?c=${c}&m=0 HTTP/1.1\r\nHost: x\r\n\r\n`);
    const [timedOut] = await first; // nothing published: {} at the poll timeout
    assert.equal(timedOut.status, 200);
    assert.equal(timedOut.body.trim(), '{}');
    const id = await publishOk(base, c, 'then');
    const second = readResponses(sock, 1);
    sock.write(`GET /rt?c=${c}&m=0 HTTP/1.1\r\nHost: x\r\n\r\n`);
    const [r] = await second;
    assert.deepEqual(JSON.parse(r.body), { [c]: { status: 'ok', msg: [{ id, payload: 'then' }] } });
  } finally {
    sock.destroy();
  }
});

test('publish with a chunked request body', async () => {
  const c = uniqueChannel();
  const body = JSON.stringify({ streamed: 'x'.repeat(3000) });
  const chunks = [body.slice(0, 10), body.slice(10, 1500), body.slice(1500)];
  const encoded = chunks.map((ch) => `${Buffer.byteLength(ch).toString(16)}\r\n${ch}\r\n`).join('') + '0\r\n\r\n';
  const r = await rawHttp(port, `POST /publish?c=${c} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n` +
    `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${encoded}`);
  assert.equal(r.status, 200, r.raw + r.body);
  assert.deepEqual(r.json, { id: 1 });
  const p = await poll(base, [[c, 0]]);
  assert.deepEqual(p.json[c].msg[0].payload, JSON.parse(body));

  // Chunks adding up to more than --max-body (64 KiB): 413, nothing stored.
  const big = 'y'.repeat(40000);
  const over = `${(40000).toString(16)}\r\n${big}\r\n`.repeat(2) + '0\r\n\r\n';
  const r2 = await rawHttp(port, `POST /publish?c=${c} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n` +
    `Transfer-Encoding: chunked\r\n\r\n${over}`);
  assert.ok(r2.status === 413 || (r2.status === null && r2.closed), `chunked body over the limit: ${r2.status} ${r2.raw}`);
  assert.equal(await redis.command('GET', keys(c).id), '1');
});

test('publish with Expect: 100-continue (curl, bodies over 1 KiB) succeeds', async () => {
  const c = uniqueChannel();
  const body = JSON.stringify({ big: 'z'.repeat(5000) });
  const sock = await connect();
  try {
    sock.write(`POST /publish?c=${c} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\n\r\n`);
    // Like curl: wait up to 1 s for "100 Continue", then send the body anyway.
    const interim = await new Promise((resolve) => {
      const t = setTimeout(() => { sock.off('data', on); resolve(''); }, 1000);
      const on = (d) => { clearTimeout(t); sock.off('data', on); resolve(d.toString('latin1')); };
      sock.on('data', on);
    });
    if (interim) assert.match(interim, /^HTTP\/1\.1 100\b/, `interim answer: ${interim.slice(0, 200)}`);
    const final = readResponses(sock, 1);
    sock.write(body);
    const [r] = await final;
    assert.equal(r.status, 200, r.head + r.body);
    assert.deepEqual(JSON.parse(r.body), { id: 1 });
  } finally {
    sock.destroy();
  }
});

test('after all of it the server still serves', async () => {
  await assertStillServes(base);
});

test('rt-server exits cleanly on SIGTERM with no sanitizer report', async () => {
  await assertCleanShutdown(stack.server);
});
