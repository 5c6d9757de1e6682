#!/usr/bin/env node
// The demo site's backend: one origin serving the pages (web/public), the
// WebAssembly client (build/client, under /client/), the pictures (/img/<n>.svg)
// and the application API (/api/...). Pages poll rt-server directly (cross-origin:
// rt-server runs with --cors-origin set to this origin); only this backend
// publishes, with a token browsers never see.
//
// Usage: node web/backend/server.mjs --rt-url URL --token-file FILE [options]
//   --port N               listen port (0 = any free port; default 8090)
//   --host H               listen address (default 127.0.0.1)
//   --rt-url URL           rt-server as reached from this backend (publishing)
//   --rt-public-url URL    rt-server as reached from browsers (default: --rt-url)
//   --token-file FILE      file holding the publish token (or env RT_TOKEN)
//   --client-dir DIR       built client (default: build/client beside web/)
//   --items N              pictures on the front page (default 600)
//   --comment-backlog N    rt backlog of each thread channel (default 100)
// Every option can also be given as an environment variable: RT_DEMO_PORT,
// RT_DEMO_HOST, RT_URL, RT_PUBLIC_URL, RT_TOKEN_FILE, RT_CLIENT_DIR, RT_DEMO_ITEMS,
// RT_COMMENT_BACKLOG. Prints "demo backend listening on http://HOST:PORT" once ready.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { RtPublisher } from './rt-publisher.mjs';
import { DemoApp, HttpError, STICKER_KINDS } from './app.mjs';
import { pictureSvg } from './images.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');

function parseArgs(argv) {
  const opts = {
    port: process.env.RT_DEMO_PORT ?? '8090',
    host: process.env.RT_DEMO_HOST ?? '127.0.0.1',
    rtUrl: process.env.RT_URL,
    rtPublicUrl: process.env.RT_PUBLIC_URL,
    tokenFile: process.env.RT_TOKEN_FILE,
    clientDir: process.env.RT_CLIENT_DIR ?? path.join(repoRoot, 'build', 'client'),
    items: process.env.RT_DEMO_ITEMS ?? '600',
    commentBacklog: process.env.RT_COMMENT_BACKLOG ?? '100',
  };
  const names = { '--port': 'port', '--host': 'host', '--rt-url': 'rtUrl', '--rt-public-url': 'rtPublicUrl',
    '--token-file': 'tokenFile', '--client-dir': 'clientDir', '--items': 'items',
    '--comment-backlog': 'commentBacklog' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--help' || argv[i] === '-h') {
      console.log(USAGE);
      process.exit(0);
    }
    const key = names[argv[i]];
    if (!key || i + 1 >= argv.length) usage(`unknown option or missing value: ${argv[i]}`);
    opts[key] = argv[++i];
  }
  if (!opts.rtUrl) usage('--rt-url (or RT_URL) is required');
  let token = process.env.RT_TOKEN;
  if (opts.tokenFile) token = fs.readFileSync(opts.tokenFile, 'utf8').trim();
  if (!token) usage('--token-file (or RT_TOKEN / RT_TOKEN_FILE) is required');
  const int = (v, name, min, max) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) usage(`${name} must be an integer in ${min}..${max}`);
    return n;
  };
  return { ...opts, token, rtPublicUrl: opts.rtPublicUrl || opts.rtUrl,
    port: int(opts.port, 'port', 0, 65535), items: int(opts.items, 'items', 1, 100000),
    commentBacklog: int(opts.commentBacklog, 'comment backlog', 1, 10000) };
}

const USAGE = 'usage: node web/backend/server.mjs --rt-url URL --token-file FILE [--port N] [--host H]\n' +
  '         [--rt-public-url URL] [--client-dir DIR] [--items N] [--comment-backlog N]';

function usage(msg) {
  console.error(`demo backend: ${msg}\n${USAGE}`);
  process.exit(2);
}

const MIME = {
  '.html': 'text/html; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm', '.json': 'application/json', '.svg': 'image/svg+xml',
  '.png': 'image/png', '.ico': 'image/x-icon', '.map': 'application/json',
};

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store',
    'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

/** Serves `rel` from `root`, refusing anything that escapes it. */
function sendFile(res, root, rel, cache) {
  const file = path.resolve(root, '.' + path.posix.normalize('/' + rel));
  if (!file.startsWith(path.resolve(root) + path.sep)) return sendJson(res, 404, { error: 'not found' });
  fs.stat(file, (err, st) => {
    if (err || !st.isFile()) return sendJson(res, 404, { error: `not found: ${rel}` });
    res.writeHead(200, { 'Content-Type': MIME[path.extname(file)] || 'application/octet-stream',
      'Content-Length': st.size, 'Cache-Control': cache });
    fs.createReadStream(file).pipe(res);
  });
}

const MAX_BODY = 16 * 1024;

function readJson(req) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > MAX_BODY) { reject(new HttpError(413, 'body too large')); req.destroy(); return; }
      chunks.push(c);
    });
    req.on('end', () => {
      try { resolve(JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null') ?? {}); }
      catch { reject(new HttpError(400, 'body must be JSON')); }
    });
    req.on('error', reject);
  });
}

function makeHandler(opts, app) {
  const publicDir = path.join(repoRoot, 'web', 'public');
  return async (req, res) => {
    const url = new URL(req.url, 'http://x');
    const p = url.pathname;
    let m;
    try {
      if (p === '/api/config' && req.method === 'GET') {
        return sendJson(res, 200, { rtUrl: opts.rtPublicUrl, stickerKinds: STICKER_KINDS });
      }
      if (p === '/api/items' && req.method === 'GET') {
        const offset = Math.max(0, Number.parseInt(url.searchParams.get('offset') ?? '0', 10) || 0);
        const limit = Math.min(100, Math.max(1, Number.parseInt(url.searchParams.get('limit') ?? '60', 10) || 60));
        return sendJson(res, 200, app.listItems(offset, limit));
      }
      if ((m = /^\/api\/threads\/(\d{1,9})$/.exec(p)) && req.method === 'GET') {
        return sendJson(res, 200, await app.loadThread(Number(m[1])));
      }
      if ((m = /^\/api\/threads\/(\d{1,9})\/comments$/.exec(p)) && req.method === 'POST') {
        const body = await readJson(req);
        return sendJson(res, 201, await app.postComment(Number(m[1]), body.author, body.text));
      }
      if ((m = /^\/api\/stickers\/([a-z]+\.[0-9-]+)$/.exec(p)) && req.method === 'POST') {
        const body = await readJson(req);
        return sendJson(res, 200, await app.addSticker(m[1], body.kind));
      }
      if (p.startsWith('/api/')) return sendJson(res, 404, { error: `no such API: ${req.method} ${p}` });
      if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: 'method not allowed' });
      if ((m = /^\/img\/(\d{1,9})\.svg$/.exec(p))) {
        app.picture(Number(m[1]));
        const svg = pictureSvg(Number(m[1]));
        res.writeHead(200, { 'Content-Type': 'image/svg+xml', 'Cache-Control': 'public, max-age=86400' });
        return res.end(svg);
      }
      if (p === '/healthz') return sendJson(res, 200, { ok: true });
      if (p.startsWith('/client/')) return sendFile(res, opts.clientDir, p.slice('/client/'.length), 'no-cache');
      return sendFile(res, publicDir, p === '/' ? 'index.html' : p.slice(1), 'no-cache');
    } catch (err) {
      if (err instanceof HttpError) return sendJson(res, err.status, { error: err.message });
      console.error('demo backend: internal error', err);
      return sendJson(res, 500, { error: 'internal error' });
    }
  };
}

const opts = parseArgs(process.argv.slice(2));
const rt = new RtPublisher({ rtUrl: opts.rtUrl, token: opts.token });
const app = new DemoApp({ rt, items: opts.items, commentBacklog: opts.commentBacklog });
const server = http.createServer(makeHandler(opts, app));
server.listen(opts.port, opts.host, () => {
  const { port } = server.address();
  console.log(`demo backend listening on http://${opts.host}:${port}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => { server.close(); server.closeAllConnections(); process.exit(0); });
}
