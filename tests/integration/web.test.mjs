// Serving pages beside the API: --web DIR (static files, never anything outside DIR) and
// --cors-origin (pages on another origin may poll).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, after } from 'node:test';
import {
  test, startRedis, startServer, withServer, assertCleanShutdown, poll, publish, publishOk, rawHttp, get,
  uniqueChannel, assertStillServes, request, RT_SERVER_BIN,
} from './lib/harness.mjs';
import { spawnSync } from 'node:child_process';

const ORIGIN = 'https://pages.example.test';
let redis, server, base, webDir, secretFile;

before(async () => {
  // DIR/site is the web root; DIR/secret.txt sits next to it and must never be served.
  webDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rt-web-'));
  fs.mkdirSync(path.join(webDir, 'site', 'sub'), { recursive: true });
  fs.writeFileSync(path.join(webDir, 'site', 'index.html'), '<!doctype html><title>rt</title>');
  fs.writeFileSync(path.join(webDir, 'site', 'app.js'), 'export const answer = 42;\n');
  fs.writeFileSync(path.join(webDir, 'site', 'sub', 'data.json'), '{"ok":true}');
  fs.writeFileSync(path.join(webDir, 'site', '.hidden'), 'HIDDEN-FILE-CONTENT');
  secretFile = path.join(webDir, 'secret.txt');
  fs.writeFileSync(secretFile, 'TOP-SECRET-CONTENT');
  redis = await startRedis();
  server = await startServer({
    redisUrl: redis.url, pollTimeout: 2,
    args: ['--web', path.join(webDir, 'site'), '--cors-origin', ORIGIN],
  });
  base = server.base;
});
after(async () => {
  await server?.stop();
  await redis?.stop();
  if (webDir) fs.rmSync(webDir, { recursive: true, force: true });
});

test('--web serves files from DIR with their content', async () => {
  const js = await fetch(base + '/app.js');
  assert.equal(js.status, 200);
  assert.equal(await js.text(), 'export const answer = 42;\n');
  assert.match(js.headers.get('content-type') || '', /javascript/);
  const idx = await fetch(base + '/');
  assert.equal(idx.status, 200);
  assert.match(await idx.text(), /<title>rt<\/title>/);
  const sub = await fetch(base + '/sub/data.json');
  assert.equal(sub.status, 200);
  assert.deepEqual(await sub.json(), { ok: true });
  const missing = await fetch(base + '/nope.html');
  assert.equal(missing.status, 404);
  await missing.text();
});

test('--web never serves anything outside DIR (path traversal)', async () => {
  const attempts = [
    '/../secret.txt', '/sub/../../secret.txt', '/..%2fsecret.txt', '/%2e%2e/secret.txt',
    '/%2e%2e%2fsecret.txt', '/sub/%2e%2e/%2e%2e/secret.txt', '/..%5csecret.txt', '/.%2e/secret.txt',
    `/${'../'.repeat(8)}${secretFile.slice(1)}`, `/%2F${secretFile.slice(1)}`, '//secret.txt',
    '/.hidden', '/app.js%00.html',
  ];
  for (const p of attempts) {
    // Raw socket: fetch would normalise the dots away before sending.
    const r = await rawHttp(server.port, `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.ok(r.status === null || r.status >= 400, `${p}: answered ${r.status}`);
    assert.doesNotMatch(r.body || r.raw || '', /TOP-SECRET-CONTENT|HIDDEN-FILE-CONTENT/, `${p}: leaked a file outside the web root`);
  }
  const h = await fetch(base + '/healthz');
  assert.equal(h.status, 200);
});

test('--cors-origin: Access-Control-Allow-Origin on /rt and /publish answers', async () => {
  const c = uniqueChannel('cors');
  const pub = await publish(base, c, '"x"');
  assert.equal(pub.status, 200);
  assert.equal(pub.headers.get('access-control-allow-origin'), ORIGIN);
  const id = pub.json.id;
  const r = await poll(base, [[c, 0]]);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), ORIGIN);
  const bad = await get(base, '/rt?c=a');
  assert.equal(bad.status, 400);
  assert.equal(bad.headers.get('access-control-allow-origin'), ORIGIN, 'also on errors, so pages can read them');
  assert.ok(Number.isSafeInteger(id) && id > 0, `publish id ${id}`);
  // A page may read Retry-After (of a 503) on another origin; no credentials unless asked.
  for (const res of [pub, r, bad]) {
    assert.match(res.headers.get('access-control-expose-headers') || '', /(^|,\s*)Retry-After(\s*,|$)/i);
    assert.equal(res.headers.get('access-control-allow-credentials'), null);
  }
});

test('--cors-credentials: Access-Control-Allow-Credentials with the explicit origin, preflights too', async () => {
  await withServer({ redisUrl: redis.url, pollTimeout: 2, args: ['--cors-origin', ORIGIN, '--cors-credentials'] }, async (s) => {
    const c = uniqueChannel('credentials');
    const pub = await publish(s.base, c, '"x"');
    assert.equal(pub.status, 200);
    const r = await get(s.base, `/rt?c=${c}&m=0`, { headers: { Origin: ORIGIN, Cookie: 'session=abc' } });
    const bad = await get(s.base, '/rt?c=a');
    const pre = await request(s.base, '/publish?c=x', {
      method: 'OPTIONS',
      headers: { Origin: ORIGIN, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization' },
    });
    assert.equal(pre.status, 204);
    for (const res of [pub, r, bad, pre]) {
      assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
      assert.equal(res.headers.get('access-control-allow-origin'), ORIGIN, 'never *');
      assert.match(res.headers.get('access-control-expose-headers') || '', /Retry-After/i);
    }
    assert.equal(r.status, 200);
  });
});

test('--cors-credentials without an explicit --cors-origin is refused at start-up', async () => {
  for (const args of [['--cors-credentials'], ['--cors-origin', '*', '--cors-credentials']]) {
    const out = spawnSync(RT_SERVER_BIN, ['--listen', '127.0.0.1:1', '--redis', redis.url, ...args], { encoding: 'utf8', timeout: 10000 });
    assert.notEqual(out.status, 0, `${args.join(' ')}: exit status`);
    assert.match(out.stderr + out.stdout, /--cors-credentials.*explicit origin/);
  }
});

test('--cors-origin: OPTIONS preflights of the JSON endpoints get 204 with the methods; others 405', async () => {
  const pre = (p) => rawHttp(server.port, `OPTIONS ${p} HTTP/1.1\r\nHost: x\r\nOrigin: ${ORIGIN}\r\n` +
    'Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n');
  const pub = await pre('/publish?c=a');
  assert.equal(pub.status, 204, pub.raw);
  assert.equal(pub.headers['access-control-allow-origin'], ORIGIN);
  assert.equal(pub.headers['access-control-allow-methods'], 'POST');
  assert.equal(pub.headers['access-control-allow-headers'], 'Authorization, Content-Type');
  assert.equal(pub.headers['access-control-max-age'], '86400');
  assert.equal(pub.headers['content-length'], undefined, pub.raw);
  const rt = await pre('/rt?c=a&m=0');
  assert.equal(rt.status, 204, rt.raw);
  assert.equal(rt.headers['access-control-allow-methods'], 'GET');
  assert.equal(rt.headers['access-control-allow-headers'], undefined);
  for (const p of ['/metrics', '/index.html']) {
    const r = await pre(p);
    assert.equal(r.status, 405, `${p}: ${r.raw}`);
    assert.equal(r.headers.allow, 'GET', p);
    assert.ok(r.json && typeof r.json.error === 'string', `${p}: ${r.body}`);
  }
});

test('without --cors-origin no Access-Control-Allow-Origin is sent', async () => {
  await withServer({ redisUrl: redis.url, pollTimeout: 2 }, async (plain) => {
    const r = await poll(plain.base, [[uniqueChannel(), 1]]);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('access-control-allow-origin'), null);
  });
});

test('after all of it the server still serves', async () => {
  await assertStillServes(base);
});

test('rt-server exits cleanly on SIGTERM with no sanitizer report', async () => {
  await assertCleanShutdown(server);
});
