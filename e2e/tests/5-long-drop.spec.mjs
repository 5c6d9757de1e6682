// Scenario 5: a drop longer than the backlog. The thread channel keeps only 10
// comments; 25 are posted while the page is offline. The page gets a reset,
// reloads the comments from the backend, resumes, and shows each comment once.
import { test, expect } from '../lib/fixtures.mjs';
import { threadReady, shownSeqs, backendSeqs, postComment, waitPolling } from '../lib/helpers.mjs';

const N = 12;
test.use({ stackOptions: { commentBacklog: 10 } });

test('a drop beyond the backlog resets, reloads and shows each comment once', async ({ stack, openPage, request }) => {
  const page = await openPage(`/thread.html?id=${N}`);
  await threadReady(page, N);
  await postComment(request, stack.baseUrl, N, 'before the long drop');
  await expect(page.locator('#comments li.comment', { hasText: 'before the long drop' })).toHaveCount(1);

  const shownBefore = await shownSeqs(page);
  await page.context().setOffline(true);
  await expect(page.locator('.status')).toHaveAttribute('data-status', 'offline');
  for (let i = 1; i <= 25; i++) await postComment(request, stack.baseUrl, N, `while away ${i}`);
  expect(await shownSeqs(page)).toEqual(shownBefore);
  await page.context().setOffline(false);

  const expected = await backendSeqs(request, stack.baseUrl, N);
  await expect.poll(() => shownSeqs(page)).toEqual(expected);
  const log = await page.evaluate((ch) => window.rtLog.filter((e) => e.channel === ch), `thread.${N}`);
  expect(log.filter((e) => e.kind === 'reset').length).toBeGreaterThanOrEqual(1);
  expect(await page.evaluate(() => window.threadState.reloads)).toBeGreaterThanOrEqual(1);

  // Resumed from the right id: new comments keep arriving, once each.
  for (let i = 1; i <= 3; i++) await postComment(request, stack.baseUrl, N, `after coming back ${i}`);
  const after = await backendSeqs(request, stack.baseUrl, N);
  await expect.poll(() => shownSeqs(page)).toEqual(after);
  await expect(page.locator('#banner')).toBeHidden();
});

test('comments posted while the page reloads after a reset are neither missed nor doubled', async ({ stack, openPage, request }) => {
  const page = await openPage(`/thread.html?id=${N}`);
  await threadReady(page, N);
  await page.context().setOffline(true);
  await expect(page.locator('.status')).toHaveAttribute('data-status', 'offline');
  for (let i = 1; i <= 15; i++) await postComment(request, stack.baseUrl, N, `while away ${i}`);

  // Back online while another visitor keeps posting: some comments land in the
  // reload, some after it through rt, and some race with it.
  let stop = false;
  const during = (async () => {
    for (let i = 1; !stop && i <= 200; i++) await postComment(request, stack.baseUrl, N, `during the reload ${i}`);
  })();
  await page.context().setOffline(false);
  await page.waitForFunction(() => window.threadState.reloads >= 1);
  await waitPolling(page, [`thread.${N}`]);
  // Keep posting a little longer after the page resumed, then stop.
  for (let k = 0; k < 5; k++) await postComment(request, stack.baseUrl, N, `after the reload ${k}`);
  stop = true;
  await during;

  const expected = await backendSeqs(request, stack.baseUrl, N);
  expect(expected.length).toBeGreaterThan(20);
  await expect.poll(() => shownSeqs(page)).toEqual(expected);
});
