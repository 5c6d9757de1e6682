// Scenario 2: sticker counts on the front page update live for items in view; an
// item far out of view is dropped from the polls once scrolling settles, and shows
// the right count when scrolled back near it (catch-up, no reload).
import { test, expect } from '../lib/fixtures.mjs';
import { addSticker, cardCount, polledChannels, waitPolling, scrollToCard } from '../lib/helpers.mjs';

test('sticker counts update live, and catch up after scrolling away and back', async ({ stack, openPage, request }) => {
  const page = await openPage('/');
  await waitPolling(page, ['stickers.image.1', 'stickers.image.2']);
  await page.evaluate(() => { window.sameDocument = true; });

  // Live: another visitor adds stickers to a card in view.
  const first = await addSticker(request, stack.baseUrl, 'image.2', 'heart');
  await expect(cardCount(page, 2, 'heart')).toHaveText(String(first.counts.heart));
  // ...and a visitor in another browser clicks the button.
  const other = await openPage('/');
  await waitPolling(other, ['stickers.image.2']);
  await expect(cardCount(other, 2, 'heart')).toHaveText(String(first.counts.heart));
  const clicked = other.waitForResponse((r) => r.url().endsWith('/api/stickers/image.2') && r.status() === 200);
  await other.click('#item-2 .sticker[data-kind="heart"]');
  const second = await (await clicked).json();
  expect(second.counts.heart).toBe(first.counts.heart + 1);
  await expect(cardCount(other, 2, 'heart')).toHaveText(String(second.counts.heart));
  await expect(cardCount(page, 2, 'heart')).toHaveText(String(second.counts.heart));

  // Far away: after scrolling settles, item 2 is no longer polled.
  await scrollToCard(page, 300);
  await page.waitForFunction(() => {
    const cs = window.rt.activePollUrls().flatMap((u) => new URL(u).searchParams.getAll('c'));
    return cs.includes('stickers.image.300') && !cs.includes('stickers.image.2');
  });
  expect(await polledChannels(page)).not.toContain('stickers.image.2');

  // Meanwhile item 2 gets more stickers; the page does not hear of them.
  let latest;
  for (let i = 0; i < 3; i++) latest = await addSticker(request, stack.baseUrl, 'image.2', 'heart');
  await expect(cardCount(page, 2, 'heart')).toHaveText(String(second.counts.heart));

  // Back near it: the client resumes the channel and the count catches up.
  await scrollToCard(page, 1);
  await waitPolling(page, ['stickers.image.2']);
  await expect(cardCount(page, 2, 'heart')).toHaveText(String(latest.counts.heart));
  expect(await page.evaluate(() => window.sameDocument)).toBe(true);
});
