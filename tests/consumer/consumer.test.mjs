// The consumer test: install -> types -> bundle -> run, as a front-end developer adopting rt
// would. `make test-client-consumer` copies tests/consumer/app to a scratch directory, installs
// its tools with npm ci and the packed tarball (make client-pack) with npm install; this file
// checks the installed package, type-checks with tsc --strict under
// `bundler` and `node16` resolution, bundles with esbuild, and runs the bundle in Debian's
// Chromium (Playwright) against a real rt-server + redis-server started here on free ports.
// The page is served from another origin than rt-server and polls with credentials, so the
// CORS headers (--cors-origin, --cors-credentials) are exercised by a real browser.
//
// Environment: RT_SERVER_BIN, RT_CONSUMER_DIR (the scratch directory holding app/).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRedis, startServer, publishOk, freePort, waitFor } from '../integration/lib/harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const work = path.resolve(process.env.RT_CONSUMER_DIR || path.join(repo, 'build/consumer'));
const app = path.join(work, 'app');

function run(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { cwd: app, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${e.status}):\n${e.stdout}\n${e.stderr}`);
  }
}

let redis, rt, web, browser, webBase, wasmRequests = 0;

before(() => {
  assert.ok(fs.existsSync(path.join(app, 'node_modules', 'rt-client')), `${app} has no rt-client installed: run make test-client-consumer`);
});

after(async () => {
  await browser?.close();
  web?.close();
  await rt?.stop();
  await redis?.stop();
});

test('the package installs with its files and exports', () => {
  const pkgDir = path.join(app, 'node_modules', 'rt-client');
  const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8'));
  assert.equal(pkg.type, 'module');
  assert.equal(pkg.exports['.'].types, './rt-client.d.mts');
  for (const f of ['rt-client.mjs', 'rt-client.d.mts', 'rt-core.wasm', 'README.md', 'LICENSE']) {
    assert.ok(fs.existsSync(path.join(pkgDir, f)), `${f} in the package`);
  }
  assert.match(fs.readFileSync(path.join(pkgDir, 'LICENSE'), 'utf8'), /MIT License/);
});

test('tsc --strict finds the types (bundler and node16 resolution)', () => {
  run(path.join(app, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json']);
  run(path.join(app, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.node16.json']);
  // The types are checked, not just found: a wrong use must fail.
  fs.writeFileSync(path.join(app, 'src', 'wrong.ts'),
    "import { createClient } from 'rt-client';\nconst rt = await createClient();\nrt.subscribe('a', { lastId: 0, onMessage: () => {} });\nexport {};\n");
  assert.throws(() => run(path.join(app, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json']), /wrong\.ts.*error TS/s);
  fs.rmSync(path.join(app, 'src', 'wrong.ts'));
});

test('esbuild bundles it; in Chromium the messages arrive (from now, then resume by lastId)', async () => {
  run(path.join(app, 'node_modules/.bin/esbuild'), ['src/main.ts', '--bundle', '--format=esm', '--target=es2022',
    '--loader:.wasm=file', '--outdir=dist', '--log-level=warning']);
  fs.copyFileSync(path.join(app, 'index.html'), path.join(app, 'dist/index.html'));
  // For the default wasm location (next to the module that imports it: here the bundle).
  fs.copyFileSync(path.join(app, 'node_modules/rt-client/rt-core.wasm'), path.join(app, 'dist/rt-core.wasm'));

  const webPort = await freePort();
  webBase = `http://127.0.0.1:${webPort}`;
  redis = await startRedis();
  rt = await startServer({ redisUrl: redis.url, pollTimeout: 5, args: ['--cors-origin', webBase, '--cors-credentials'] });
  const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' };
  web = http.createServer((req, res) => {
    const p = new URL(req.url, webBase).pathname;
    const file = path.join(app, 'dist', path.normalize(p === '/' ? '/index.html' : p));
    // The first load of the default wasm fails (both of Emscripten's tries: streaming, then
    // its ArrayBuffer fallback): createClient must reject, and the next one load it afresh.
    if (p === '/rt-core.wasm' && wasmRequests++ < 2) { res.writeHead(503); res.end('busy'); return; }
    if (!file.startsWith(path.join(app, 'dist')) || !fs.existsSync(file)) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream' });
    res.end(fs.readFileSync(file));
  });
  await new Promise((r) => web.listen(webPort, '127.0.0.1', r));

  const { chromium } = await import(path.join(app, 'node_modules/@playwright/test/index.mjs'));
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM_BIN || '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));

  const c = `consumer.${Date.now()}`;
  const before = await publishOk(rt.base, c, { n: 0 });  // published before the subscribe
  await page.goto(`${webBase}/?rt=${encodeURIComponent(rt.base)}&c=${c}&mode=default`);
  await page.waitForFunction(() => window.app && window.app.ready, null, { timeout: 20000 });
  const loadErrors = await page.evaluate(() => window.app.loadErrors);
  assert.equal(loadErrors.length, 1, `one failed wasm load, then a good one: ${loadErrors}`);
  // from: 'now' has its position once the server answered the first poll.
  await page.waitForFunction((ch) => window.app.rt.lastId(ch) > 0, c, { timeout: 20000 });
  assert.equal(await page.evaluate((ch) => window.app.rt.lastId(ch), c), before);
  const ids = [];
  for (let n = 1; n <= 3; n++) ids.push(await publishOk(rt.base, c, { n }));
  await page.waitForFunction(() => window.app.received.length >= 3, null, { timeout: 20000 });
  const got = await page.evaluate(() => window.app.received);
  assert.deepEqual(got, ids.map((id, i) => ({ kind: 'message', id, payload: { n: i + 1 } })));
  await waitFor(() => page.evaluate(() => window.app.statuses.includes('live')), { timeout: 20000, what: 'live' });

  // A second page: the wasm URL from the bundler (wasmUrl), resuming after the first message.
  const page2 = await context.newPage();
  page2.on('pageerror', (e) => pageErrors.push(e.message));
  await page2.goto(`${webBase}/?rt=${encodeURIComponent(rt.base)}&c=${c}&mode=url&lastId=${ids[0]}`);
  await page2.waitForFunction(() => window.app && window.app.received.length >= 2, null, { timeout: 20000 });
  assert.deepEqual((await page2.evaluate(() => window.app.received)).map((r) => r.id), ids.slice(1));
  assert.deepEqual(await page2.evaluate(() => window.app.loadErrors), []);
  assert.deepEqual(pageErrors, []);
  await context.close();
});

test('Vite bundles it: the default wasm location through its asset rewrite, and ?url', async () => {
  run(path.join(app, 'node_modules/.bin/vite'), ['build']);
  const assets = fs.readdirSync(path.join(app, 'dist/vite/assets'));
  assert.ok(assets.some((f) => /^rt-core-.*\.wasm$/.test(f)), `Vite emitted the wasm: ${assets}`);
  const context = await browser.newContext();
  const pageErrors = [];
  for (const mode of ['default', 'url']) {
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    const c = `consumer.vite.${mode}.${Date.now()}`;
    await page.goto(`${webBase}/vite/vite.html?rt=${encodeURIComponent(rt.base)}&c=${c}&mode=${mode}&lastId=0`);
    await page.waitForFunction(() => window.app && window.app.ready, null, { timeout: 20000 });
    const id = await publishOk(rt.base, c, { vite: mode });
    await page.waitForFunction(() => window.app.received.length >= 1, null, { timeout: 20000 });
    assert.deepEqual(await page.evaluate(() => window.app.received), [{ kind: 'message', id, payload: { vite: mode } }]);
    assert.deepEqual(await page.evaluate(() => window.app.loadErrors), []);
  }
  assert.deepEqual(pageErrors, []);
  await context.close();
});
