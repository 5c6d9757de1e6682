// The publish token: rotation without a restart (the token file is re-read on SIGHUP), a
// file that became unreadable or empty keeps the old token, and no token ever reaches the
// log (debug level, every request and both tokens).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { before, after } from 'node:test';
import {
  test, startStack, assertCleanShutdown, publish, uniqueChannel, waitFor, TOKEN, assertStillServes,
} from './lib/harness.mjs';

let stack, base, tokenFile;
const NEW_TOKEN = 'rotated-' + Math.random().toString(36).slice(2);

before(async () => {
  stack = await startStack({ pollTimeout: 2, args: ['--log-level', 'debug'] });
  base = stack.base;
  tokenFile = stack.server.argv[stack.server.argv.indexOf('--publish-token-file') + 1];
});
after(async () => { await stack?.stop(); });

test('SIGHUP re-reads the token file: the new token is accepted, the old one refused', async () => {
  const c = uniqueChannel();
  assert.equal((await publish(base, c, '1')).status, 200, 'the start-up token');
  assert.equal((await publish(base, c, '1', { token: NEW_TOKEN })).status, 401, 'not yet the new one');
  fs.writeFileSync(tokenFile, NEW_TOKEN + '\n');
  process.kill(stack.server.pid, 'SIGHUP');
  await waitFor(async () => (await publish(base, c, '2', { token: NEW_TOKEN })).status === 200,
    { what: 'the new token to be accepted after SIGHUP' });
  const old = await publish(base, c, '3', { token: TOKEN });
  assert.equal(old.status, 401, `old token after rotation: ${old.body}`);
  assert.equal((await publish(base, c, '4', { token: NEW_TOKEN })).status, 200);
});

test('a token file that is empty or gone on SIGHUP keeps the current token', async () => {
  const c = uniqueChannel();
  fs.writeFileSync(tokenFile, '  \n');
  process.kill(stack.server.pid, 'SIGHUP');
  await waitFor(() => /SIGHUP: publish token kept/.test(stack.server.log()), { what: 'the refusal in the log' });
  assert.equal((await publish(base, c, '1', { token: NEW_TOKEN })).status, 200, 'still the rotated token');
  fs.rmSync(tokenFile);
  process.kill(stack.server.pid, 'SIGHUP');
  await waitFor(() => (stack.server.log().match(/SIGHUP: publish token kept/g) || []).length >= 2,
    { what: 'the second refusal in the log' });
  assert.equal((await publish(base, c, '2', { token: NEW_TOKEN })).status, 200, 'still the rotated token');
  assert.equal((await publish(base, c, '3', { token: TOKEN })).status, 401);
  // Back to the harness's token, for the closing checks.
  fs.writeFileSync(tokenFile, TOKEN);
  process.kill(stack.server.pid, 'SIGHUP');
  await waitFor(async () => (await publish(base, c, '4')).status === 200, { what: 'the token rotated back' });
});

test('no token appears in the log', async () => {
  const log = stack.server.log();
  assert.ok(log.length > 0);
  assert.ok(!log.includes(TOKEN), 'the start-up token is in the log');
  assert.ok(!log.includes(NEW_TOKEN), 'the rotated token is in the log');
});

test('after all of it the server still serves', async () => {
  await assertStillServes(base);
});

test('rt-server exits cleanly on SIGTERM with no sanitizer report', async () => {
  await assertCleanShutdown(stack.server);
});
