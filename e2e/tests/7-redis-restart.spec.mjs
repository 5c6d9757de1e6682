// Scenario 7: Redis restarted while a thread page and the front page are open.
// rt-server reconnects; the pages recover and keep updating.
//  - with persistence (append-only file), the channels survive: the pages just
//    resume, every comment once, in order, without a reset;
//  - without it, every channel is lost; new ids start above every old one, so a
//    page's last-seen id is not part of the new history, whether it polls before
//    or after new messages arrive: rt answers `reset` (reason `lost`), the thread
//    page reloads its comments, the front page takes the newest counts, and both
//    keep updating.
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
  const resets = (page, ch) => page.evaluate((c) => window.rtLog.filter((e) => e.channel === c && e.kind === 'reset').length, ch);

  // After the reload: nothing doubled, later comments come live without another reload.
  async function noDoublesThenLive(stack, request, thread) {
    const seqs = await shownSeqs(thread);
    expect(new Set(seqs).size).toBe(seqs.length);
    const reloads = await thread.evaluate(() => window.threadState.reloads);
    await postComment(request, stack.baseUrl, N, 'well after the restart');
    await expect.poll(() => shownSeqs(thread)).toEqual(await backendSeqs(request, stack.baseUrl, N));
    expect(await thread.evaluate(() => window.threadState.reloads)).toBe(reloads);
  }

  test('pages reset, reload and keep updating after Redis restarts empty', async ({ stack, openPage, request }) => {
    const { thread, front } = await openBoth(stack, openPage, request);
    const threadResets = await resets(thread, `thread.${N}`);
    const frontResets = await resets(front, 'stickers.image.3');

    await stack.redis.restart();
    await stack.rtHealthy();
    // Publishing again at once: whether a page polls before or after the new messages,
    // its last-seen id is not part of the new history (ids never come back), so it is
    // told (a `lost` reset) and reloads.
    await keepsUpdating(stack, request, thread, front);
    expect(await resets(thread, `thread.${N}`)).toBeGreaterThan(threadResets);
    expect(await resets(front, 'stickers.image.3')).toBeGreaterThan(frontResets);
    expect(await thread.evaluate(() => window.threadState.reloads)).toBeGreaterThanOrEqual(1);
    await noDoublesThenLive(stack, request, thread);
  });

  test('publishes bring the channels past the pages\' ids before the pages poll: still a reset, nothing missed', async ({ stack, openPage, request }) => {
    const { thread, front } = await openBoth(stack, openPage, request);
    const threadResets = await resets(thread, `thread.${N}`);
    const frontResets = await resets(front, 'stickers.image.3');
    // Both pages stop polling (offline) until the channels have more messages after the
    // restart than they had before it: with ids restarting at 1 (contract version 1) the
    // pages would then ask for "after L", get only the messages above L, and silently
    // miss the first new ones.
    for (const page of [thread, front]) {
      await page.context().setOffline(true);
      await expect(page.locator('.status')).toHaveAttribute('data-status', 'offline');
    }
    await stack.redis.restart();
    await stack.rtHealthy();
    for (let i = 1; i <= 5; i++) await postComment(request, stack.baseUrl, N, `while the page was away ${i}`);
    let s;
    for (let i = 0; i < 3; i++) s = await addSticker(request, stack.baseUrl, 'image.3', 'star');
    for (const page of [thread, front]) await page.context().setOffline(false);

    await expect.poll(() => shownSeqs(thread), { timeout: 20_000 }).toEqual(await backendSeqs(request, stack.baseUrl, N));
    await expect(cardCount(front, 3, 'star')).toHaveText(String(s.counts.star), { timeout: 20_000 });
    expect(await resets(thread, `thread.${N}`)).toBeGreaterThan(threadResets);
    expect(await resets(front, 'stickers.image.3')).toBeGreaterThan(frontResets);
    expect(await thread.evaluate(() => window.threadState.reloads)).toBeGreaterThanOrEqual(1);
    await waitPolling(thread, [`thread.${N}`]);
    await keepsUpdating(stack, request, thread, front);
    await noDoublesThenLive(stack, request, thread);
  });
});
