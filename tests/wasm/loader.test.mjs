// The wasm loader (client-wasm/rt-core.mjs): the plain C exports of bindings.cpp wrapped as
// class Core. Strings cross in both directions as UTF-8 through malloc'd buffers, and the
// heap views must follow the wasm memory when it grows.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { clientDir, wasmBinary, newClient } from './helpers.mjs';

const { default: createRtCore } = await import(pathToFileURL(path.join(clientDir, 'rt-core.mjs')).href);

test('Core: every method answers JSON text; lastId a number; bad input is an error, not a crash', async () => {
  const { Core } = await createRtCore({ wasmBinary });
  let core = new Core();
  // Options are values (kind 1 string, 2 number, 3 other), checked by the core.
  core.option('urlBudget', 1, 0, '4096');
  assert.match(core.init(), /option urlBudget must be an integer/);
  core.delete();
  core = new Core();
  core.option('baseUrl', 1, 0, 'http://127.0.0.1:1');
  core.option('seed', 2, 1, '');
  assert.equal(core.init(), '');
  const sub = JSON.parse(core.subscribe(1000, 'thread.1', 5, false));
  assert.equal(sub.ok, true);
  assert.equal(core.lastId('thread.1'), 5);
  assert.equal(core.lastId('unknown'), 0);
  const bad = JSON.parse(core.subscribe(1000, 'bad name', 0, false));
  assert.equal(bad.ok, false);
  assert.match(bad.error, /invalid channel name/);
  // A channel name with UTF-8 bytes is measured in bytes and rejected, never misread.
  assert.equal(JSON.parse(core.subscribe(1000, 'é'.repeat(10), 0, false)).ok, false);
  const urls = JSON.parse(core.activePollUrls());
  assert.equal(JSON.parse(core.onTimer(1001)).ok, true);
  assert.ok(Array.isArray(urls));
  assert.equal(JSON.parse(core.close(1002)).ok, true);
  core.delete();
});

test('large responses grow the wasm memory; UTF-8 payloads arrive intact, in order', async () => {
  const { rt, clock, ff, statuses } = await newClient();
  const got = [];
  rt.subscribe('big', { lastId: 0, onMessage: (p, id) => got.push([id, p]), onReset: () => assert.fail('reset') });
  await clock.advance(0);
  // Two responses of ~7 MB each: far more than the module's initial 16 MiB once parsed.
  const text = (k) => `${k}: é😀ß漢字 `.repeat(400);
  let id = 0;
  for (let round = 0; round < 2; round++) {
    const msg = [];
    for (let i = 0; i < 500; i++) { id++; msg.push({ id, prev: id - 1, payload: { k: id, t: text(id) } }); }
    await ff.respond(ff.only(), 200, { big: { status: 'ok', msg } });
    assert.equal(statuses.at(-1).state, 'live', statuses.at(-1).reason);
  }
  assert.equal(got.length, 1000);
  got.forEach(([gid, p], i) => {
    assert.equal(gid, i + 1);
    assert.equal(p.k, i + 1);
    assert.equal(p.t, text(i + 1));
  });
  assert.equal(rt.lastId('big'), 1000);
  rt.close();
});

test('the loader fetches the wasm (streaming, or bytes when the type is wrong); a failed fetch rejects', async (t) => {
  const http = await import('node:http');
  const hits = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url);
    if (req.url === '/ok/rt-core.wasm') res.writeHead(200, { 'Content-Type': 'application/wasm' }).end(wasmBinary);
    else if (req.url === '/plain/rt-core.wasm') res.writeHead(200, { 'Content-Type': 'text/plain' }).end(wasmBinary);
    else res.writeHead(404).end('no');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const base = `http://127.0.0.1:${server.address().port}`;
  for (const dir of ['ok', 'plain']) {
    const { Core } = await createRtCore({ locateFile: (file) => `${base}/${dir}/${file}` });
    const core = new Core();
    assert.equal(core.init(JSON.stringify({ baseUrl: 'http://127.0.0.1:1', seed: 1 })), '');
    core.delete();
  }
  assert.ok(hits.filter((u) => u === '/plain/rt-core.wasm').length >= 1);
  await assert.rejects(createRtCore({ locateFile: (file) => `${base}/missing/${file}` }), /rt-core\.wasm: HTTP 404/);
});
