// Scenario 1: two visitors on one thread. A comment posted by one appears for the
// other within a second; a quick burst of 50 comments arrives all, in order, once.
import { test, expect } from '../lib/fixtures.mjs';
import { threadReady, shownSeqs, backendSeqs, backendIds, postComment, expectConsecutive } from '../lib/helpers.mjs';

const N = 7;

test('a comment posted in one browser appears in the other within 1 s', async ({ stack, openPage }) => {
  const alice = await openPage(`/thread.html?id=${N}`);
  const bob = await openPage(`/thread.html?id=${N}`);
  await threadReady(alice, N);
  await threadReady(bob, N);
  const before = await shownSeqs(bob);

  await alice.fill('#author', 'alice');
  await alice.fill('#text', 'Beautiful light on that ridge.');
  const posted = alice.waitForResponse((r) => r.url().endsWith(`/api/threads/${N}/comments`) && r.status() === 201);
  await alice.click('#post-button');
  const { seq } = await (await posted).json();
  const t0 = Date.now();

  const comment = bob.locator(`#comments li.comment[data-seq="${seq}"]`);
  await expect(comment).toContainText('Beautiful light on that ridge.', { timeout: 1000 });
  expect(Date.now() - t0).toBeLessThan(1000);
  await expect(comment).toContainText('alice');
  // The poster sees it too (it comes back through rt), once.
  await expect(alice.locator(`#comments li.comment[data-seq="${seq}"]`)).toHaveCount(1);
  expect(await shownSeqs(bob)).toEqual([...before, seq]);
  await expect(alice.locator('#text')).toHaveValue('');
});

test('50 comments posted quickly arrive all, in order, once', async ({ stack, openPage, request }) => {
  const alice = await openPage(`/thread.html?id=${N}`);
  const bob = await openPage(`/thread.html?id=${N}`);
  await threadReady(alice, N);
  await threadReady(bob, N);

  // Concurrent posts: the backend serialises them per thread, rt numbers them.
  await Promise.all(Array.from({ length: 50 }, (_, i) => postComment(request, stack.baseUrl, N, `burst comment ${i + 1}`, `user${i % 5}`)));
  const expected = await backendSeqs(request, stack.baseUrl, N);
  expect(expected.length).toBeGreaterThanOrEqual(50);

  for (const page of [alice, bob]) {
    await expect.poll(() => shownSeqs(page)).toEqual(expected);
    const ids = await expectConsecutive(page, `thread.${N}`, (await backendIds(request, stack.baseUrl, N)).filter((id) => id > 0).slice(-50));
    expect(ids.length).toBe(50);
    expect(await page.evaluate(() => window.threadState.reloads)).toBe(0);
  }
});

test('the publish token never reaches the browser', async ({ stack, openPage }) => {
  const seen = [];
  const watch = (page) => page.on('response', async (r) => {
    const type = r.headers()['content-type'] ?? '';
    if (/json|javascript|html|text/.test(type)) seen.push({ url: r.url(), body: await r.text().catch(() => '') });
  });
  const page = await openPage(`/thread.html?id=${N}`);
  watch(page);
  await page.reload();
  await threadReady(page, N);
  await page.fill('#author', 'carol');
  await page.fill('#text', 'checking what the browser gets');
  await page.click('#post-button');
  await expect(page.locator('#comments li.comment', { hasText: 'checking what the browser gets' })).toHaveCount(1);
  expect(seen.length).toBeGreaterThan(3);
  for (const { url, body } of seen) expect(body.includes(stack.token), url).toBe(false);
});
