// Scenario 4: short drops. The browser goes offline for ~0.5 s while comments are
// published; rt-server is restarted while the page is open. Afterwards every
// comment is shown once, in order, without a reset (the backlog covers the gap).
import { test, expect } from '../lib/fixtures.mjs';
import { threadReady, shownSeqs, backendSeqs, postComment, expectConsecutive, waitPolling } from '../lib/helpers.mjs';

const N = 11;

test('offline for half a second while comments are published', async ({ stack, openPage, request }) => {
  const page = await openPage(`/thread.html?id=${N}`);
  await threadReady(page, N);
  await postComment(request, stack.baseUrl, N, 'before the drop');
  await expect(page.locator('#comments li.comment', { hasText: 'before the drop' })).toHaveCount(1);

  const shownBefore = await shownSeqs(page);
  await page.context().setOffline(true);
  // The client noticed (and aborted its held poll: setOffline alone does not).
  await expect(page.locator('.status')).toHaveAttribute('data-status', 'offline');
  const posting = (async () => {
    for (let i = 1; i <= 10; i++) await postComment(request, stack.baseUrl, N, `during the drop ${i}`);
  })();
  await page.waitForTimeout(500); // the drop itself: a real half-second outage
  await posting;
  // Really cut off: nothing of the drop has arrived yet.
  expect(await shownSeqs(page)).toEqual(shownBefore);
  await page.context().setOffline(false);
  for (let i = 1; i <= 3; i++) await postComment(request, stack.baseUrl, N, `after the drop ${i}`);

  const expected = await backendSeqs(request, stack.baseUrl, N);
  await expect.poll(() => shownSeqs(page)).toEqual(expected);
  await expectConsecutive(page, `thread.${N}`);
  expect(await page.evaluate(() => window.threadState.reloads)).toBe(0);
});

test('rt-server restarted while the page is open', async ({ stack, openPage, request }) => {
  const page = await openPage(`/thread.html?id=${N}`);
  const front = await openPage('/');
  await threadReady(page, N);
  await waitPolling(front, ['stickers.image.1']);
  await postComment(request, stack.baseUrl, N, 'before the restart');
  await expect(page.locator('#comments li.comment', { hasText: 'before the restart' })).toHaveCount(1);

  await stack.rt.stop();
  await expect(page.locator('.status')).not.toHaveAttribute('data-status', 'live');
  await stack.rt.start();
  for (let i = 1; i <= 5; i++) await postComment(request, stack.baseUrl, N, `after the restart ${i}`);
  const r = await request.post(`${stack.baseUrl}/api/stickers/image.1`, { data: { kind: 'sun' } });
  const { counts } = await r.json();

  const expected = await backendSeqs(request, stack.baseUrl, N);
  await expect.poll(() => shownSeqs(page)).toEqual(expected);
  await expectConsecutive(page, `thread.${N}`);
  await expect(front.locator('#item-1 .sticker[data-kind="sun"] .count')).toHaveText(String(counts.sun));
  await expect(page.locator('.status')).toHaveAttribute('data-status', 'live');
});
