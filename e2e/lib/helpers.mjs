// Helpers shared by the specs: reading what a page shows and what its rt client
// polls, and acting as other visitors through the demo backend's API.
import { expect } from '@playwright/test';

/** Channels of every poll the page's client is running now. */
export function polledChannels(page) {
  return page.evaluate(() => {
    const out = [];
    for (const u of window.rt.activePollUrls()) out.push(...new URL(u, location.href).searchParams.getAll('c'));
    return out;
  });
}

/** Waits until the page's client polls every one of `channels`. */
export async function waitPolling(page, channels, timeout = 10_000) {
  await page.waitForFunction((chs) => {
    if (!window.rt) return false;
    const polled = new Set();
    for (const u of window.rt.activePollUrls()) for (const c of new URL(u, location.href).searchParams.getAll('c')) polled.add(c);
    return chs.every((c) => polled.has(c));
  }, channels, { timeout });
}

/** Waits until the thread page has loaded and polls its comment channel. */
export async function threadReady(page, n) {
  await page.waitForFunction(() => window.threadState?.ready === true);
  await waitPolling(page, [`thread.${n}`]);
}

/** Comment sequence numbers in the order the thread page shows them. */
export function shownSeqs(page) {
  return page.$$eval('#comments li.comment', (els) => els.map((e) => Number(e.dataset.seq)));
}

/** The thread as the backend has it: [seq, ...] in order. */
export async function backendSeqs(request, baseUrl, n) {
  const res = await request.get(`${baseUrl}/api/threads/${n}`);
  expect(res.ok()).toBeTruthy();
  return (await res.json()).comments.map((c) => c.seq);
}

/** The rt ids of the thread's comments as the backend has them, in order (0: seeded). */
export async function backendIds(request, baseUrl, n) {
  const res = await request.get(`${baseUrl}/api/threads/${n}`);
  expect(res.ok()).toBeTruthy();
  return (await res.json()).comments.map((c) => c.id);
}

/** Posts one comment as another visitor; resolves with {seq, id}. */
export async function postComment(request, baseUrl, n, text, author = 'e2e') {
  const res = await request.post(`${baseUrl}/api/threads/${n}/comments`, { data: { author, text } });
  expect(res.status(), await res.text()).toBe(201);
  return res.json();
}

/** Adds a sticker as another visitor; resolves with {counts, id}. */
export async function addSticker(request, baseUrl, item, kind = 'star') {
  const res = await request.post(`${baseUrl}/api/stickers/${item}`, { data: { kind } });
  expect(res.status(), await res.text()).toBe(200);
  return res.json();
}

/** Locator of the count shown on one sticker button of a front-page card. */
export function cardCount(page, n, kind = 'star') {
  return page.locator(`#item-${n} .sticker[data-kind="${kind}"] .count`);
}

/**
 * Asserts the rt log of `channel` is a run of increasing ids without resets (ids are not
 * dense: max(N + 1, Redis TIME in µs)). With `expectedIds` (the ids of the messages the
 * page must have received, in order), the log must be exactly those: none skipped.
 */
export async function expectConsecutive(page, channel, expectedIds) {
  const log = await page.evaluate((ch) => window.rtLog.filter((e) => e.channel === ch), channel);
  expect(log.filter((e) => e.kind === 'reset'), `resets on ${channel}`).toEqual([]);
  const ids = log.map((e) => e.id);
  for (let i = 1; i < ids.length; i++) expect(ids[i], `id after ${ids[i - 1]} on ${channel}`).toBeGreaterThan(ids[i - 1]);
  if (expectedIds) expect(ids, `ids received on ${channel}`).toEqual(expectedIds);
  return ids;
}

/** Scrolls the front page's feed so that card n is at the top of the viewport. */
export async function scrollToCard(page, n) {
  // Cards come in batches as the feed is scrolled: keep going to the bottom until n exists.
  while (!(await page.locator(`#item-${n}`).count())) {
    const cards = await page.evaluate(() => {
      const f = document.getElementById('feed');
      f.scrollTop = f.scrollHeight;
      return document.querySelectorAll('[data-rt-channel]').length;
    });
    await page.waitForFunction((k) => document.querySelectorAll('[data-rt-channel]').length > k, cards);
  }
  await page.evaluate((k) => {
    const f = document.getElementById('feed');
    const card = document.getElementById(`item-${k}`);
    f.scrollTop += card.getBoundingClientRect().top - f.getBoundingClientRect().top;
  }, n);
}
