// One poll for all tabs of an origin: 8 tabs of the thread page in one browser profile, over
// HTTP/1.1 (6 connections per host at most), against one rt-server. Every tab shows live, the
// server holds one poll for all of them (rt_open_polls in /metrics), a new comment reaches
// every tab, and closing the leader tab moves the polling to another tab without a missed
// message.
import { test, expect } from '../lib/fixtures.mjs';
import { threadReady, postComment, shownSeqs, expectConsecutive } from '../lib/helpers.mjs';

const N = 9;
const TABS = 8;

async function openPolls(rtUrl) {
  const text = await (await fetch(`${rtUrl}/metrics`)).text();
  const m = text.match(/^rt_open_polls(?:\{[^}]*\})? (\d+)/m);
  if (!m) throw new Error(`no rt_open_polls in /metrics:\n${text.slice(0, 2000)}`);
  return Number(m[1]);
}

const roles = (pages) => Promise.all(pages.map((p) => p.evaluate(() => window.rt.tabRole())));

test('8 tabs share one poll; a comment reaches all; the leader closing hands over without loss', async ({ stack, browser, request }) => {
  const context = await browser.newContext();
  const errors = [];
  try {
    const pages = [];
    for (let i = 0; i < TABS; i++) {
      const page = await context.newPage();
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(`${stack.baseUrl}/thread.html?id=${N}`);
      pages.push(page);
    }
    for (const page of pages) await threadReady(page, N);
    for (const page of pages) await expect(page.locator('.status')).toHaveAttribute('data-status', 'live', { timeout: 20_000 });
    const r = await roles(pages);
    expect(r.filter((x) => x === 'leader'), `roles: ${r}`).toHaveLength(1);
    expect(r.filter((x) => x === 'follower')).toHaveLength(TABS - 1);
    // One poll in flight at the rt host for all 8 tabs (sampled: between two answers the
    // count may briefly read 0).
    await expect.poll(() => openPolls(stack.rtUrl), { timeout: 10_000 }).toBe(1);

    const { seq } = await postComment(request, stack.baseUrl, N, 'to every tab');
    for (const page of pages) await expect(page.locator(`#comments li.comment[data-seq="${seq}"]`)).toHaveCount(1);
    await expect.poll(() => openPolls(stack.rtUrl), { timeout: 10_000 }).toBe(1);

    // Close the leader: another tab takes over; comments posted around the hand-over arrive
    // in every remaining tab, in order, once, without a reset.
    const leader = pages[r.indexOf('leader')];
    const rest = pages.filter((p) => p !== leader);
    const posting = (async () => {
      const out = [];
      for (let i = 0; i < 6; i++) {
        out.push((await postComment(request, stack.baseUrl, N, `around the hand-over ${i}`)).seq);
        await new Promise((res) => setTimeout(res, 100));
      }
      return out;
    })();
    await new Promise((res) => setTimeout(res, 150));
    await leader.close({ runBeforeUnload: false });
    const seqs = await posting;
    await expect.poll(async () => (await roles(rest)).filter((x) => x === 'leader').length, { timeout: 10_000 }).toBe(1);
    for (const page of rest) {
      for (const s of seqs) await expect(page.locator(`#comments li.comment[data-seq="${s}"]`)).toHaveCount(1);
      const shown = await shownSeqs(page);
      expect(new Set(shown).size, 'each comment once').toBe(shown.length);
      await expectConsecutive(page, `thread.${N}`);
      expect(await page.evaluate(() => window.threadState.reloads)).toBe(0);
      await expect(page.locator('.status')).toHaveAttribute('data-status', 'live');
    }
    await expect.poll(() => openPolls(stack.rtUrl), { timeout: 10_000 }).toBe(1);
  } finally {
    await context.close();
  }
  expect(errors, 'uncaught errors in the pages').toEqual([]);
});
