// Back/forward cache: the client aborts its polls on pagehide (a page with a request in
// flight is not kept), so Chromium keeps the thread page when the visitor goes to the front
// page; on the way back (pageshow, persisted) it resumes from the same ids: a comment posted
// meanwhile arrives, once, without a reset.
import { test, expect } from '../lib/fixtures.mjs';
import { threadReady, shownSeqs, postComment, waitPolling, expectConsecutive } from '../lib/helpers.mjs';

const N = 4;

// Playwright launches Chromium with --disable-back-forward-cache (so that goBack() requests
// can be intercepted); this file needs the cache as browsers ship it.
test.use({
  launchOptions: {
    executablePath: process.env.CHROMIUM_BIN ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-quic'],
    ignoreDefaultArgs: ['--disable-back-forward-cache'],
  },
});

test('bfcache: pagehide aborts, pageshow resumes from the same ids', async ({ stack, openPage, request }) => {
  const page = await openPage(`/thread.html?id=${N}`);
  await threadReady(page, N);
  await postComment(request, stack.baseUrl, N, 'before leaving');
  await expect(page.locator('#comments li.comment', { hasText: 'before leaving' })).toHaveCount(1);
  const lastId = await page.evaluate((n) => window.rt.lastId(`thread.${n}`), N);
  await page.evaluate(() => {
    window.bfcacheLog = [];
    addEventListener('pagehide', (e) => window.bfcacheLog.push(['hide', e.persisted, window.rt.activePollUrls().length]));
    addEventListener('pageshow', (e) => window.bfcacheLog.push(['show', e.persisted]));
  });

  // Chromium says why a page was not kept (CDP), for the failure message.
  const cdp = await page.context().newCDPSession(page);
  const notUsed = [];
  cdp.on('Page.backForwardCacheNotUsed', (e) => notUsed.push(e.notRestoredExplanations.map((x) => x.reason)));
  await cdp.send('Page.enable');
  await page.goto(`${stack.baseUrl}/`);
  const { seq } = await postComment(request, stack.baseUrl, N, 'posted while away');
  // history.back() from the page: Playwright's goBack() loses track of a page restored from
  // the cache.
  await page.evaluate(() => { setTimeout(() => history.back(), 0); });
  await page.waitForFunction(() => location.pathname === '/thread.html' && window.threadState?.ready === true);

  const log = await page.evaluate(() => window.bfcacheLog);
  const reasons = JSON.stringify(notUsed);
  expect(log, `restored from the back/forward cache (not restored because: ${reasons})`).toEqual([['hide', true, 0], ['show', true]]);
  // The same JavaScript heap: the client resumes with the id it had.
  await waitPolling(page, [`thread.${N}`]);
  const urls = await page.evaluate(() => window.rt.activePollUrls());
  const m = urls.map((u) => new URL(u).searchParams).find((q) => q.getAll('c').includes(`thread.${N}`));
  const ids = m.getAll('c').map((c, i) => [c, Number(m.getAll('m')[i])]);
  const resumedFrom = Object.fromEntries(ids)[`thread.${N}`];
  expect(resumedFrom === lastId || resumedFrom > lastId).toBe(true);
  await expect(page.locator(`#comments li.comment[data-seq="${seq}"]`)).toHaveCount(1);
  expect(await page.evaluate(() => window.threadState.reloads)).toBe(0);
  await expectConsecutive(page, `thread.${N}`);
  await expect(page.locator('.status')).toHaveAttribute('data-status', 'live');
  expect((await shownSeqs(page)).filter((s) => s === seq)).toHaveLength(1);
});
