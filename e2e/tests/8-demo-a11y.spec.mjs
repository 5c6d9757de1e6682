// Scenario 8: the demo for every reader. Live regions for the status pill, the banner and
// new comments; labelled inputs; a visible focus ring; one tab stop per front-page card
// (arrow keys reach its stickers); your own comment at once, once; "Retry now".
import { test, expect } from '../lib/fixtures.mjs';
import { threadReady, postComment, shownSeqs } from '../lib/helpers.mjs';

const N = 5;

test('status pill, banner and new comments are live regions; every input has a label', async ({ stack, openPage, request }) => {
  const page = await openPage(`/thread.html?id=${N}`);
  await threadReady(page, N);
  for (const sel of ['.status', '#banner', '#comment-news']) {
    await expect(page.locator(sel)).toHaveAttribute('role', 'status');
    await expect(page.locator(sel)).toHaveAttribute('aria-live', 'polite');
  }
  const unlabelled = await page.$$eval('input, textarea, select', (els) => els.filter((e) => !e.labels?.length).map((e) => e.id));
  expect(unlabelled).toEqual([]);
  await expect(page.getByLabel('Name')).toHaveAttribute('id', 'author');
  await expect(page.getByLabel('Comment', { exact: true })).toHaveAttribute('id', 'text');
  // Every sticker button is named, and each sticker row is a labelled toolbar.
  expect(await page.$$eval('.sticker', (bs) => bs.filter((b) => !b.getAttribute('aria-label')).length)).toBe(0);
  await expect(page.locator('.post [role="toolbar"]')).toHaveAttribute('aria-label', /^Stickers for /);

  // Another visitor's comment is read out; the list gets it in place.
  await postComment(request, stack.baseUrl, N, 'Read me out, please', 'zoe');
  await expect(page.locator('#comment-news')).toHaveText('New comment from zoe: Read me out, please');
  await expect(page.locator('#comments li.comment', { hasText: 'Read me out, please' })).toHaveCount(1);
  // The banner is empty (not shown) while nothing is wrong.
  await expect(page.locator('#banner')).toBeHidden();
  await expect(page.locator('#banner')).toHaveText('');
});

test('front page: one tab stop per card, a visible focus, arrow keys reach the stickers', async ({ stack, openPage }) => {
  const page = await openPage('/');
  await page.waitForFunction(() => document.querySelectorAll('[data-rt-channel]').length >= 8);
  const ids = await page.$$eval('#grid > .card', (cs) => cs.slice(0, 6).map((c) => c.id));
  const focused = () => page.evaluate(() => {
    const a = document.activeElement;
    const cs = getComputedStyle(a);
    return { card: a.closest('.card')?.id ?? null, cls: a.className, kind: a.dataset.kind ?? null,
      outline: cs.outlineStyle, width: parseFloat(cs.outlineWidth) };
  });
  await page.focus(`#${ids[0]} .card-title`);
  // Tab walks from card to card: nothing else inside a card is a tab stop.
  for (let i = 1; i < ids.length; i++) {
    await page.keyboard.press('Tab');
    const f = await focused();
    expect(f.card).toBe(ids[i]);
    expect(f.cls).toBe('card-title');
    expect(f.outline).toBe('solid');
    expect(f.width).toBeGreaterThanOrEqual(2);
  }
  const tabStops = await page.$$eval(`#${ids[0]} a, #${ids[0]} button`, (els) => els.filter((e) => e.tabIndex >= 0).length);
  expect(tabStops).toBe(1);

  // Right arrow enters the card's sticker toolbar; arrows move; Enter adds a sticker.
  const card = ids[5];
  await page.keyboard.press('ArrowRight');
  expect(await focused()).toMatchObject({ card, kind: 'heart', outline: 'solid' });
  await page.keyboard.press('ArrowRight');
  expect(await focused()).toMatchObject({ card, kind: 'star' });
  const count = page.locator(`#${card} .sticker[data-kind="star"] .count`);
  const before = Number(await count.textContent());
  await page.keyboard.press('Enter');
  await expect(count).toHaveText(String(before + 1));
  expect(await focused()).toMatchObject({ card, kind: 'star' });  // the focus stays put
  await page.keyboard.press('End');
  expect(await focused()).toMatchObject({ card, kind: 'bolt' });
  await page.keyboard.press('Escape');
  expect(await focused()).toMatchObject({ card, cls: 'card-title' });
  // Shift+Tab from the title goes to the previous card's title.
  await page.keyboard.press('Shift+Tab');
  expect(await focused()).toMatchObject({ card: ids[4], cls: 'card-title' });
});

test('thread page: each sticker row is one tab stop; inputs show a focus ring', async ({ stack, openPage, request }) => {
  await postComment(request, stack.baseUrl, N, 'first');
  await postComment(request, stack.baseUrl, N, 'second');
  const page = await openPage(`/thread.html?id=${N}`);
  await threadReady(page, N);
  const stops = await page.$$eval('[role="toolbar"]', (ts) => ts.map((t) => [...t.querySelectorAll('button')].filter((b) => b.tabIndex >= 0).length));
  expect(stops.length).toBeGreaterThanOrEqual(3);
  expect(stops.every((k) => k === 1)).toBe(true);
  // Roving tabindex: after moving with the arrows, the row's tab stop is where the focus is.
  const row = page.locator('#comments li.comment').first().locator('[role="toolbar"]');
  await row.locator('.sticker').first().focus();
  await page.keyboard.press('ArrowRight');
  await expect(row.locator('.sticker[tabindex="0"]')).toHaveAttribute('data-kind', 'star');
  await expect(row.locator('.sticker[data-kind="star"]')).toBeFocused();
  await page.focus('#text');
  expect(await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle)).toBe('solid');
});

test('your own comment shows at once, before rt brings it, and only once', async ({ stack, openPage }) => {
  const page = await openPage(`/thread.html?id=${N}`);
  await threadReady(page, N);
  // Hold every poll from now on, and make the client start a new one (the held poll that
  // was already in flight is aborted).
  const held = [];
  await page.route(`${stack.rtUrl}/rt?**`, (route) => { held.push(route); });
  await page.evaluate(() => { window.rt.setOnline(false); window.rt.setOnline(true); });
  await expect.poll(() => held.length).toBeGreaterThan(0);
  const before = await shownSeqs(page);

  await page.fill('#author', 'me');
  await page.fill('#text', 'Posted from this very page');
  const posted = page.waitForResponse((r) => r.url().endsWith(`/api/threads/${N}/comments`) && r.status() === 201);
  await page.focus('#post-button');
  await page.keyboard.press('Enter');  // by keyboard: the focus stays on the button
  const { seq, id } = await (await posted).json();
  const mine = page.locator(`#comments li.comment[data-seq="${seq}"]`);
  await expect(mine).toContainText('Posted from this very page');
  expect(await shownSeqs(page)).toEqual([...before, seq]);
  expect(await page.evaluate((i) => window.rtLog.some((e) => e.id === i), id)).toBe(false);  // rt has not brought it
  await expect(page.locator('#comment-news')).toHaveText('');  // not read out to its poster
  await expect(page.locator('.comment-pending')).toHaveCount(0);
  await expect(page.locator('#post-button')).toBeFocused();

  // Let the polls through: rt delivers the same comment, which is not shown again.
  await page.unroute(`${stack.rtUrl}/rt?**`);
  for (const r of held) await r.abort().catch(() => {});
  await page.waitForFunction((i) => window.rtLog.some((e) => e.kind === 'message' && e.id === i), id);
  await expect(mine).toHaveCount(1);
  expect(await shownSeqs(page)).toEqual([...before, seq]);
  await expect(page.locator('#comment-news')).toHaveText('');
});

test('your own comment that rt brings before the backend answers is shown once', async ({ stack, openPage }) => {
  const page = await openPage(`/thread.html?id=${N}`);
  await threadReady(page, N);
  const before = await shownSeqs(page);
  let states = null;
  // Hold the backend's answer until rt has delivered the comment to the page.
  await page.route('**/api/threads/*/comments', async (route) => {
    const res = await route.fetch();
    const { id } = JSON.parse(await res.text());
    await page.waitForFunction((i) => window.rtLog.some((e) => e.kind === 'message' && e.id === i), id);
    states = await page.evaluate(() => ({ pending: document.querySelectorAll('.comment-pending').length,
      mine: document.querySelectorAll('#comments li.comment').length, news: document.getElementById('comment-news').textContent }));
    await route.fulfill({ response: res });
  });
  await page.fill('#author', 'me');
  await page.fill('#text', 'rt was faster');
  await page.click('#post-button');
  await expect(page.locator('#compose-note')).toHaveText('Posted.');
  // While the answer was held: the rt copy replaced the placeholder, and was not read out.
  expect(states).toEqual({ pending: 0, mine: before.length + 1, news: '' });
  await expect(page.locator('#comments li.comment', { hasText: 'rt was faster' })).toHaveCount(1);
  expect((await shownSeqs(page)).length).toBe(before.length + 1);
});

test('a comment that fails to post leaves no trace and gives the text back', async ({ stack, openPage }) => {
  const page = await openPage(`/thread.html?id=${N}`);
  await threadReady(page, N);
  const before = await shownSeqs(page);
  await page.route('**/api/threads/*/comments', (route) => route.fulfill({ status: 502, contentType: 'application/json', body: '{"error":"rt is down"}' }));
  await page.fill('#author', 'me');
  await page.fill('#text', 'This one will not make it');
  await page.click('#post-button');
  await expect(page.locator('#compose-note')).toHaveText('Not posted: rt is down');
  await expect(page.locator('#text')).toHaveValue('This one will not make it');
  await expect(page.locator('.comment-pending')).toHaveCount(0);
  expect(await shownSeqs(page)).toEqual(before);
});

test('"Retry now" on the error pill polls again at once', async ({ stack, openPage }) => {
  const page = await openPage(`/thread.html?id=${N}`);
  await threadReady(page, N);
  const retry = page.locator('#retry');
  await expect(retry).toBeHidden();
  // The server rejects every poll: the client shows the error and waits before retrying.
  await page.route(`${stack.rtUrl}/rt?**`, (route) => route.fulfill({
    status: 400, contentType: 'application/json', body: '{"error":"forced by the test"}',
    headers: { 'Access-Control-Allow-Origin': stack.baseUrl },
  }));
  await page.evaluate(() => { window.rt.setOnline(false); window.rt.setOnline(true); });
  await expect(page.locator('.status')).toHaveAttribute('data-status', 'error');
  await expect(retry).toBeVisible();
  await expect(retry).toHaveText('Retry now');
  // While it waits there is no poll in flight; the click starts one in the same task.
  const r = await page.evaluate(() => new Promise((resolve) => {
    const check = () => {
      if (window.rt.status().state === 'error' && window.rt.activePollUrls().length === 0) {
        document.getElementById('retry').click();
        resolve(window.rt.activePollUrls().length);
      } else setTimeout(check, 5);
    };
    check();
  }));
  expect(r).toBeGreaterThan(0);
  // The server accepts polls again: the next retry (the button's or the client's own) is live.
  await page.unroute(`${stack.rtUrl}/rt?**`);
  if (await retry.isVisible()) await retry.click().catch(() => {});
  await expect(page.locator('.status')).toHaveAttribute('data-status', 'live');
  await expect(retry).toBeHidden();
});
