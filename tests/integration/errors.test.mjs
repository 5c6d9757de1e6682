// Bad input on /rt and elsewhere: the error table of PROTOCOL.md section 3 (400, 414, 405),
// unknown paths (404), malformed HTTP on raw sockets. Never a crash, never a hang.
import assert from 'node:assert/strict';
import { before, after } from 'node:test';
import {
  test, startStack, withServer, assertCleanShutdown, get, request, poll, publishOk, rawHttp,
  uniqueChannel,
} from './lib/harness.mjs';

let stack, base, port;

before(async () => {
  // A short --request-timeout: a declared body that never comes is dropped after it.
  stack = await startStack({ pollTimeout: 2, args: ['--request-timeout', '2'] });
  base = stack.base;
  port = stack.server.port;
});
after(async () => { await stack?.stop(); });

function assertJsonError(r, status, what, { noStore = true, names } = {}) {
  assert.equal(r.status, status, `${what}: status (body ${JSON.stringify(r.body)})`);
  const ct = r.headers.get ? r.headers.get('content-type') : r.headers['content-type'];
  assert.match(ct || '', /^application\/json\b/i, `${what}: Content-Type`);
  if (noStore) {
    const cc = r.headers.get ? r.headers.get('cache-control') : r.headers['cache-control'];
    assert.match(cc || '', /\bno-store\b/i, `${what}: Cache-Control`);
  }
  assert.ok(r.json && typeof r.json.error === 'string' && r.json.error.length > 0,
    `${what}: body must be {"error":"..."}, got ${JSON.stringify(r.body)}`);
  if (names) assert.match(r.json.error, names, `${what}: the error should name the parameter`);
}

const NAMES_M = /(^|[^a-z])m([^a-z]|$)/i;
const NAMES_C = /(^|[^a-z])c([^a-z]|$)|channel/i;
const NAMES_C_OR_M = /(^|[^a-z])[cm]([^a-z]|$)|channel|pair/i;

test('/rt: c and m that do not pair up answer 400', async () => {
  const cases = ['', '?', '?c=a', '?m=1', '?c=a&c=b&m=1&m=2', '?m=1&c=a', '?c=a&m=1&c=b',
    '?c=a&m=1&m=2', '?cachebreak=1', '?c=a&cachebreak=1'];
  for (const q of cases) assertJsonError(await get(base, `/rt${q}`), 400, `/rt${q}`, { names: NAMES_C_OR_M });
});

test('/rt: m that is not a decimal integer in 0..2^53-1 answers 400', async () => {
  const bad = ['abc', '-1', '1e3', '9007199254740992', '99999999999999999999', '1.5', '%2B1',
    '+1', '%201', '1%20', '', '0x10', '1%00', '%EF%BC%91' /* fullwidth 1 */, 'Infinity', 'NaN'];
  for (const m of bad) {
    assertJsonError(await get(base, `/rt?c=a&m=${m}`), 400, `m=${m}`, { names: NAMES_M });
  }
  // The boundary itself is valid: 2^53-1 > N, so the channel is reset to 0.
  const r = await get(base, '/rt?c=edge&m=9007199254740991');
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(r.json, { edge: { status: 'reset', id: 0, reason: 'lost', msg: [] } });
});

test('/rt: bad channel names answer 400; the whole alphabet and 128 bytes are fine', async () => {
  const bad = ['', 'a%20b', 'a/b', 'a%2Fb', '%C3%A9', 'a*b', 'a%22b', 'a+b', 'a%00b', 'a%0Ab',
    '%7Bx%7D', 'x'.repeat(129), 'y'.repeat(1000)];
  for (const c of bad) {
    assertJsonError(await get(base, `/rt?c=${c}&m=0`), 400, `c=${c.slice(0, 40)}`, { names: NAMES_C });
  }
  // Malformed percent-encoding: 400 too (the message may name the encoding, not c).
  for (const c of ['%ZZ', '%4', 'a%', '%%']) {
    assertJsonError(await get(base, `/rt?c=${c}&m=0`), 400, `c=${c}`);
  }
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-';
  const longest = (alphabet + alphabet).slice(0, 128);
  const r = await get(base, `/rt?c=${alphabet}&m=1&c=${longest}&m=1`);
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(r.json, {
    [alphabet]: { status: 'reset', id: 0, reason: 'lost', msg: [] },
    [longest]: { status: 'reset', id: 0, reason: 'lost', msg: [] },
  });
});

test('/rt: a duplicate channel answers 400', async () => {
  for (const q of ['c=a&m=0&c=a&m=1', 'c=a&m=1&c=b&m=1&c=a&m=1', 'c=a&m=0&c=%61&m=0']) {
    assertJsonError(await get(base, `/rt?${q}`), 400, q, { names: NAMES_C });
  }
});

test('/rt: more than 500 channels (default --max-channels) answers 400; 500 are served', async () => {
  const pairs = (n) => Array.from({ length: n }, (_, i) => `c=ch${i}&m=1`).join('&');
  assertJsonError(await get(base, `/rt?${pairs(501)}`), 400, '501 channels');
  const r = await get(base, `/rt?${pairs(500)}`);
  assert.equal(r.status, 200, r.body.slice(0, 300));
  assert.equal(Object.keys(r.json).length, 500);
  assert.deepEqual(r.json.ch499, { status: 'reset', id: 0, reason: 'lost', msg: [] });
});

test('/rt: a URL over 65536 bytes (default --max-url) answers 414; just under is served', async () => {
  const target70k = `/rt?c=a&m=1&cachebreak=${'x'.repeat(70000)}`;
  const r414 = await rawHttp(port, `GET ${target70k} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  assert.equal(r414.status, 414, `${target70k.length}-byte URL: ${r414.raw?.slice(0, 200)}`);
  assertJsonError({ ...r414, headers: r414.headers }, 414, '70000', { noStore: false });
  // Past the head limit (--max-url + 16 KiB) evhttp refuses the request itself: 400, closed.
  const huge = await rawHttp(port, `GET /rt?c=a&m=1&cachebreak=${'x'.repeat(300000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  assert.ok(huge.status === 400 || (huge.status === null && huge.closed), `300000-byte URL: ${huge.status} ${huge.raw?.slice(0, 200)}`);
  const target = `/rt?c=under&m=1&cachebreak=${'x'.repeat(60000)}`;
  const r = await rawHttp(port, `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  assert.equal(r.status, 200, r.raw?.slice(0, 200));
  assert.deepEqual(r.json, { under: { status: 'reset', id: 0, reason: 'lost', msg: [] } });
});

test('--max-channels and --max-url are honoured', async () => {
  await withServer({ redisUrl: stack.redis.url, args: ['--max-channels', '5', '--max-url', '1000'] }, async (small) => {
    const pairs = (n) => Array.from({ length: n }, (_, i) => `c=k${i}&m=1`).join('&');
    assertJsonError(await get(small.base, `/rt?${pairs(6)}`), 400, '6 channels with --max-channels 5');
    const r5 = await get(small.base, `/rt?${pairs(5)}`);
    assert.equal(r5.status, 200, r5.body);
    assert.equal(Object.keys(r5.json).length, 5);
    const long = await get(small.base, `/rt?c=a&m=1&cachebreak=${'z'.repeat(1100)}`);
    assertJsonError(long, 414, '1100-byte URL with --max-url 1000', { noStore: false });
    const short = await get(small.base, `/rt?c=a&m=1&cachebreak=${'z'.repeat(800)}`);
    assert.equal(short.status, 200, short.body);
  });
});

test('/rt: methods other than GET answer 405', async () => {
  for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
    const r = await request(base, '/rt?c=a&m=0', { method, body: method === 'DELETE' ? undefined : '{}' });
    assertJsonError(r, 405, `${method} /rt`);
  }
});

test('unknown paths answer 404 with a JSON error', async () => {
  for (const p of ['/nope', '/rt/extra', '/RT?c=a&m=0', '/publish/x', '/metricsx']) {
    const r = await get(base, p);
    assertJsonError(r, 404, p, { noStore: false });
  }
});

test('malformed HTTP requests get an error or a closed connection, never a hang', async () => {
  // [request bytes, must it be refused?] — refused: a 4xx/5xx answer or a closed connection.
  const cases = [
    ['GARBAGE\r\n\r\n', true],
    ['GET\r\n\r\n', true],
    ['GET /rt?c=a&m=1 HTTP/9.9\r\n\r\n', true],
    ['GET /rt?c=a&m=1 HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n', true],
    ['POST /publish?c=a HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}', true],
    ['POST /publish?c=a HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n{}', true],
    ['POST /publish?c=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\n\r\n', true],
    ['\x00\x01\x02\xff\r\n\r\n', true],
    [`GET /rt?c=a&m=1&cachebreak=${'u'.repeat(2 << 20)} HTTP/1.1\r\nHost: x\r\n\r\n`, true],
    ['GET /rt?c=a&m=1 HTTP/1.1\r\nContent-Length: -5\r\n\r\n', false],
    [`GET /rt?c=a&m=1 HTTP/1.1\r\nHost: x\r\nX-Big: ${'h'.repeat(200000)}\r\n\r\n`, false],
  ];
  for (const [data, refused] of cases) {
    const what = JSON.stringify(data.slice(0, 70));
    const r = await rawHttp(port, Buffer.from(data, 'latin1'), { timeout: 5000 });
    if (r.status !== null) {
      if (refused) assert.ok(r.status >= 400, `${what}: answered ${r.status}`);
    } else {
      assert.ok(r.closed, `${what}: neither answered nor closed`);
    }
    const h = await fetch(base + '/healthz');
    assert.equal(h.status, 200, `server alive after ${what}`);
  }
});

test('connections closed mid-request do not disturb the server', async () => {
  const net = await import('node:net');
  const partials = [
    'GET /rt?c=a&m=', 'GET /rt?c=a&m=1 HTTP/1.1\r\nHost: x\r\n',
    'POST /publish?c=a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"half":',
  ];
  for (let round = 0; round < 20; round++) {
    await Promise.all(partials.map((data) => new Promise((resolve) => {
      const s = net.createConnection({ port, host: '127.0.0.1' }, () => {
        s.write(data, () => { if (round % 2) s.destroy(); else s.resetAndDestroy(); resolve(); });
      });
      s.on('error', () => resolve());
    })));
  }
  const c = uniqueChannel();
  const id = await publishOk(base, c, 'still here');
  const r = await poll(base, [[c, 0]]);
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [{ id, prev: 0, payload: 'still here' }] } });
});

test('after all of it the server still serves', async () => {
  const h = await fetch(base + '/healthz');
  assert.equal(h.status, 200);
  const m = await fetch(base + '/metrics');
  assert.equal(m.status, 200);
  assert.match(await m.text(), /^# TYPE \S+ (gauge|counter|histogram)/m);
  const c = uniqueChannel();
  const id = await publishOk(base, c, 'final');
  const r = await poll(base, [[c, 0]]);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { [c]: { status: 'ok', msg: [{ id, prev: 0, payload: 'final' }] } });
});

test('rt-server exits cleanly on SIGTERM with no sanitizer report', async () => {
  await assertCleanShutdown(stack.server);
});
