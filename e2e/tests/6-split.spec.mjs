// Scenario 6: more channels than one URL can hold. The page lowers the client's
// URL budget (?budget=), so the client splits its channels over several polls;
// a message on a channel of any of them arrives.
import { test, expect } from '../lib/fixtures.mjs';
import { addSticker, cardCount, waitPolling } from '../lib/helpers.mjs';

const BUDGET = 300;
// The front page polls 60 channels. Its ids grow to 16 digits once a message arrives
// (Redis TIME in µs): at 300 bytes that makes 7 polls, one more than Chromium keeps open
// to one host, and the 7th waits behind six held polls. 500 bytes keeps it at 4 or 5.
const FRONT_BUDGET = 500;

test('channels are split over several polls under a small URL budget', async ({ stack, openPage, request }) => {
  const page = await openPage(`/?budget=${FRONT_BUDGET}`);
  await waitPolling(page, ['stickers.image.1', 'stickers.image.9']);
  const urls = await page.evaluate(() => window.rt.activePollUrls());
  expect(urls.length).toBeGreaterThanOrEqual(2);
  expect(urls.length).toBeLessThanOrEqual(5);
  const groups = urls.map((u) => new URL(u).searchParams.getAll('c'));
  for (const u of urls) expect(u.length, u).toBeLessThanOrEqual(FRONT_BUDGET);
  const all = groups.flat();
  expect(new Set(all).size).toBe(all.length); // each channel in exactly one poll

  // One sticker on a card of every poll: each arrives.
  const expected = [];
  for (const g of groups) {
    const n = Number(g[g.length - 1].split('.').pop());
    const { counts } = await addSticker(request, stack.baseUrl, `image.${n}`, 'bolt');
    expected.push([n, counts.bolt]);
  }
  for (const [n, count] of expected) await expect(cardCount(page, n, 'bolt')).toHaveText(String(count));
});

test('the thread page splits its channels too', async ({ stack, openPage, request }) => {
  const N = 21;
  for (let i = 1; i <= 12; i++) {
    const res = await request.post(`${stack.baseUrl}/api/threads/${N}/comments`, { data: { author: 'seed', text: `comment ${i}` } });
    expect(res.status()).toBe(201);
  }
  const page = await openPage(`/thread.html?id=${N}&budget=${BUDGET}`);
  await page.waitForFunction(() => window.threadState?.ready === true);
  const seqs = await page.$$eval('#comments li.comment', (els) => els.map((e) => e.dataset.seq));
  const channels = [`thread.${N}`, `stickers.image.${N}`, ...seqs.map((s) => `stickers.comment.${N}-${s}`)];
  await waitPolling(page, channels);
  const urls = await page.evaluate(() => window.rt.activePollUrls());
  expect(urls.length).toBeGreaterThanOrEqual(2);
  for (const u of urls) expect(u.length, u).toBeLessThanOrEqual(BUDGET);

  const last = seqs[seqs.length - 1];
  const { counts } = await (await request.post(`${stack.baseUrl}/api/stickers/comment.${N}-${last}`, { data: { kind: 'heart' } })).json();
  await expect(page.locator(`#comments li.comment[data-seq="${last}"] .sticker[data-kind="heart"] .count`)).toHaveText(String(counts.heart));
  const res = await request.post(`${stack.baseUrl}/api/threads/${N}/comments`, { data: { author: 'late', text: 'one more' } });
  const { seq } = await res.json();
  await expect(page.locator(`#comments li.comment[data-seq="${seq}"]`)).toHaveCount(1);
});
