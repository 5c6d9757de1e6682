// Scenario 7: Redis restarted while a thread page and the front page are open.
// rt-server reconnects; the pages recover and keep updating.
//  - with persistence (append-only file), the channels survive: the pages just
//    resume, every comment once, in order, without a reset;
//  - without it, every channel is lost and each page's last-seen ids are ahead of
//    Redis: rt answers `reset`, the thread page reloads its comments, the front
//    page takes the newest counts, and both keep updating.
import { test, expect } from '../lib/fixtures.mjs';
import { threadReady, shownSeqs, backendSeqs, postComment, addSticker, cardCount, waitPolling, expectConsecutive } from '../lib/helpers.mjs';

const N = 5;

async function openBoth(stack, openPage, request) {
  const thread = await openPage(`/thread.html?id=${N}`);
  const front = await openPage('/');
  await threadReady(thread, N);
  await waitPolling(front, ['stickers.image.3']);
  for (let i = 1; i <= 3; i++) await postComment(request, stack.baseUrl, N, `before redis restart ${i}`);
  const s = await addSticker(request, stack.baseUrl, 'image.3', 'star');
  await expect(cardCount(front, 3, 'star')).toHaveText(String(s.counts.star));
  await expect.poll(() => shownSeqs(thread)).toEqual(await backendSeqs(request, stack.baseUrl, N));
  return { thread, front };
}

async function keepsUpdating(stack, request, thread, front) {
  for (let i = 1; i <= 3; i++) await postComment(request, stack.baseUrl, N, `after redis restart ${i}`);
  const s = await addSticker(request, stack.baseUrl, 'image.3', 'star');
  await expect.poll(() => shownSeqs(thread), { timeout: 20_000 }).toEqual(await backendSeqs(request, stack.baseUrl, N));
  await expect(cardCount(front, 3, 'star')).toHaveText(String(s.counts.star), { timeout: 20_000 });
  await expect(thread.locator('.status')).toHaveAttribute('data-status', 'live');
  await expect(front.locator('.status')).toHaveAttribute('data-status', 'live');
}

test.describe('Redis with persistence', () => {
  test.use({ stackOptions: { redisPersist: true } });

  test('pages resume after Redis restarts, every comment once, no reset', async ({ stack, openPage, request }) => {
    const { thread, front } = await openBoth(stack, openPage, request);
    await stack.redis.restart();
    await stack.rtHealthy();
    await keepsUpdating(stack, request, thread, front);
    await expectConsecutive(thread, `thread.${N}`);
    expect(await thread.evaluate(() => window.threadState.reloads)).toBe(0);
  });
});

test.describe('Redis without persistence', () => {
  test('pages reset, reload and keep updating after Redis restarts empty', async ({ stack, openPage, request }) => {
    const { thread, front } = await openBoth(stack, openPage, request);
    const resetsBefore = (page, ch) => page.evaluate((c) => window.rtLog.filter((e) => e.channel === c && e.kind === 'reset').length, ch);
    const threadResets = await resetsBefore(thread, `thread.${N}`);
    const frontResets = await resetsBefore(front, 'stickers.image.3');

    await stack.redis.restart();
    await stack.rtHealthy();
    // Ids start again from 0. The protocol can only tell a client so while its
    // last-seen id is ahead of the channel's (L > N): wait for both pages to get
    // that reset before publishing again. (A client that polls only after new
    // publishes have brought N back up to L cannot notice: see the e2e README.)
    await expect.poll(() => resetsBefore(thread, `thread.${N}`), { timeout: 20_000 }).toBeGreaterThan(threadResets);
    await expect.poll(() => resetsBefore(front, 'stickers.image.3'), { timeout: 20_000 }).toBeGreaterThan(frontResets);
    await thread.waitForFunction(() => window.threadState.reloads >= 1);
    await waitPolling(thread, [`thread.${N}`]);

    await keepsUpdating(stack, request, thread, front);
    // The reload did not duplicate anything, and later comments came live.
    const seqs = await shownSeqs(thread);
    expect(new Set(seqs).size).toBe(seqs.length);
    const reloads = await thread.evaluate(() => window.threadState.reloads);
    await postComment(request, stack.baseUrl, N, 'well after the restart');
    await expect.poll(() => shownSeqs(thread)).toEqual(await backendSeqs(request, stack.baseUrl, N));
    expect(await thread.evaluate(() => window.threadState.reloads)).toBe(reloads);
  });
});
