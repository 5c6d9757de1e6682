// Scenario 9: the demo on a phone (390 x 844 CSS pixels, touch, a mobile viewport). The
// feed fills the visible height (100dvh), nothing scrolls sideways, one column of cards;
// scrolling the feed moves the polled channels; posting a comment works by tapping.
import { test, expect } from '../lib/fixtures.mjs';
import { threadReady, waitPolling, polledChannels, scrollToCard } from '../lib/helpers.mjs';

const PHONE = { viewport: { width: 390, height: 844 }, context: { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } };

test('phone: the front page fits the screen and follows the scroll', async ({ stack, openPage }) => {
  const page = await openPage('/', PHONE);
  await waitPolling(page, ['stickers.image.1']);
  await expect(page.locator('.status')).toHaveAttribute('data-status', 'live');
  const m = await page.evaluate(() => {
    const feed = document.getElementById('feed').getBoundingClientRect();
    const header = document.querySelector('.topbar').getBoundingClientRect();
    const lefts = [...document.querySelectorAll('#grid > .card')].slice(0, 4).map((c) => Math.round(c.getBoundingClientRect().left));
    return { dvh: CSS.supports('height', '100dvh'), inner: innerHeight, feedBottom: feed.bottom, feedTop: feed.top,
      headerBottom: header.bottom, scrollW: document.documentElement.scrollWidth, innerW: innerWidth, lefts,
      pillRight: document.querySelector('.status').getBoundingClientRect().right,
      feedRule: [...document.styleSheets].flatMap((sh) => [...sh.cssRules]).filter((r) => r.selectorText === '.feed').map((r) => r.cssText).join(' ') };
  });
  expect(m.dvh).toBe(true);
  // The feed's height is written in dvh (an emulated phone has no browser bars, so the
  // measured height alone cannot tell dvh from vh).
  expect(m.feedRule).toMatch(/100dvh/);
  expect(Math.abs(m.feedTop - m.headerBottom)).toBeLessThanOrEqual(1);
  expect(Math.abs(m.feedBottom - m.inner)).toBeLessThanOrEqual(1);  // the feed ends at the visible bottom
  expect(m.scrollW).toBeLessThanOrEqual(m.innerW);                  // nothing scrolls sideways
  expect(new Set(m.lefts).size).toBe(1);                            // one column
  expect(m.pillRight).toBeLessThanOrEqual(m.innerW);

  // Far down the feed, the client polls the cards there (not the first ones) once scrolling stops.
  await scrollToCard(page, 150);
  await waitPolling(page, ['stickers.image.150'], 15_000);
  expect(await polledChannels(page)).not.toContain('stickers.image.1');
});

test('phone: the thread page posts a comment by tapping; the error pill and Retry fit', async ({ stack, openPage }) => {
  const page = await openPage('/thread.html?id=4', PHONE);
  await threadReady(page, 4);
  await page.tap('#author');
  await page.fill('#author', 'thumbs');
  await page.tap('#text');
  await page.fill('#text', 'Typed on a phone');
  await page.tap('#post-button');
  await expect(page.locator('#comments li.comment', { hasText: 'Typed on a phone' })).toHaveCount(1);
  expect(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth)).toBe(true);

  await page.route(`${stack.rtUrl}/rt?**`, (route) => route.fulfill({
    status: 400, contentType: 'application/json', body: '{"error":"forced by the test"}',
    headers: { 'Access-Control-Allow-Origin': stack.baseUrl },
  }));
  await page.evaluate(() => { window.rt.setOnline(false); window.rt.setOnline(true); });
  await expect(page.locator('#retry')).toBeVisible();
  const box = await page.evaluate(() => ({ retry: document.getElementById('retry').getBoundingClientRect().right,
    w: innerWidth, h: document.querySelector('.topbar').getBoundingClientRect().height }));
  expect(box.retry).toBeLessThanOrEqual(box.w);  // the button is on screen, the header on one line
  expect(box.h).toBeLessThan(70);
  await page.unroute(`${stack.rtUrl}/rt?**`);
  await page.tap('#retry').catch(() => {});  // it may have retried by itself already
  await expect(page.locator('.status')).toHaveAttribute('data-status', 'live');
});
