// Scenario 3: after scrolling stops for 1 s the client polls exactly the 40 items
// closest to the viewport; while the reader keeps scrolling it does not re-poll.
import { test, expect } from '../lib/fixtures.mjs';
import { polledChannels, waitPolling, scrollToCard } from '../lib/helpers.mjs';

/** Every card's channel and its distance (px) to the feed's visible area. */
function distances(page) {
  return page.evaluate(() => {
    const view = document.getElementById('feed').getBoundingClientRect();
    return [...document.querySelectorAll('[data-rt-channel]')].map((el) => {
      const r = el.getBoundingClientRect();
      const dy = r.bottom < view.top ? view.top - r.bottom : r.top > view.bottom ? r.top - view.bottom : 0;
      const dx = r.right < view.left ? view.left - r.right : r.left > view.right ? r.left - view.right : 0;
      return { channel: el.dataset.rtChannel, d: Math.hypot(dx, dy) };
    });
  });
}

test('after scrolling stops for 1 s exactly the 40 closest items are polled', async ({ stack, openPage }) => {
  const page = await openPage('/');
  await waitPolling(page, ['stickers.image.1']);

  await scrollToCard(page, 150);
  await page.waitForFunction(() => {
    const cs = window.rt.activePollUrls().flatMap((u) => new URL(u).searchParams.getAll('c'));
    return cs.includes('stickers.image.150') && !cs.includes('stickers.image.1');
  });
  const polled = await polledChannels(page);
  expect(new Set(polled).size).toBe(polled.length); // no channel twice
  expect(polled.length).toBe(40);

  // The 40 closest: no polled card is farther from the viewport than any card left out.
  const all = await distances(page);
  const inPoll = new Set(polled);
  const polledD = all.filter((x) => inPoll.has(x.channel)).map((x) => x.d);
  const otherD = all.filter((x) => !inPoll.has(x.channel)).map((x) => x.d);
  expect(polledD.length).toBe(40);
  expect(Math.max(...polledD)).toBeLessThanOrEqual(Math.min(...otherD) + 1);
  // Every card in view is polled.
  for (const x of all) if (x.d === 0) expect(inPoll.has(x.channel), `${x.channel} is in view`).toBe(true);
});

test('no burst of re-polls while scrolling continuously', async ({ stack, openPage }) => {
  const page = await openPage('/');
  await waitPolling(page, ['stickers.image.1']);
  // Load a few batches so there is room to scroll.
  await scrollToCard(page, 200);
  await scrollToCard(page, 1);
  await waitPolling(page, ['stickers.image.1']);
  await page.waitForFunction(() => window.rt.activePollUrls().length > 0);

  const polls = [];
  const pollTimes = [];
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === '/rt') { polls.push(r.url()); pollTimes.push(Date.now()); }
  });
  // Scroll 60 px every 50 ms for 3 s: scrolling never stops for 1 s.
  for (let i = 0; i < 60; i++) {
    await page.evaluate(() => document.getElementById('feed').scrollBy(0, 60));
    await page.waitForTimeout(50);
  }
  expect(polls.length, `polls started while scrolling:\n${polls.join('\n')}`).toBeLessThanOrEqual(1);

  // Once it stops, the selection follows after the 1 s settle time: one new set.
  const stoppedAt = Date.now();
  const start = polls.length;
  await page.waitForFunction(() => {
    const cs = window.rt.activePollUrls().flatMap((u) => new URL(u).searchParams.getAll('c'));
    return cs.length === 40 && !cs.includes('stickers.image.1');
  });
  expect(polls.length - start).toBeGreaterThanOrEqual(1);
  expect(polls.length - start).toBeLessThanOrEqual(3);
  // Not before scrolling had stopped for (about) 1 s.
  expect(pollTimes[start] - stoppedAt).toBeGreaterThanOrEqual(900);
});

test('on load every card on screen is polled', async ({ stack, openPage }) => {
  const page = await openPage('/');
  await waitPolling(page, ['stickers.image.1']);
  const onScreen = (await distances(page)).filter((x) => x.d === 0).map((x) => x.channel);
  expect(onScreen.length).toBeGreaterThanOrEqual(4);
  await waitPolling(page, onScreen);
});
