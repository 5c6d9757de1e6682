// Thread page: a picture, its comments (stream channel thread.<n>) and sticker
// counts on the picture and on every comment (one state channel each).
//
// Comments are shown once each (keyed by the backend's per-thread sequence number) and in
// that order (the backend numbers them in publishing order, so a comment that rt delivers
// late still lands in its place). Your own comment shows as soon as you send it, marked as
// posting, and becomes the real one when the backend answers, or when it comes back
// through rt first; either way it is shown once. On a reset of the comment channel the
// page reloads the comments from the backend and resumes from the id the backend
// returns with them: the backend serialises publishing and loading per thread, so
// nothing is missed or shown twice (see web/backend/app.mjs).
//
// Test hook: window.threadState = {reloads, ready} and the rt log (common.mjs).

import { loadConfig, startRt, logRt, api, el, timeAgo, stickerBar, avatarColour } from './common.mjs';

const n = Number.parseInt(new URLSearchParams(location.search).get('id') ?? '1', 10);
const postNode = document.getElementById('post');
const list = document.getElementById('comments');
const title = document.getElementById('comments-title');
const note = document.getElementById('comments-note');
const banner = document.getElementById('banner');
const form = document.getElementById('compose');
const authorInput = document.getElementById('author');
const textInput = document.getElementById('text');
const composeNote = document.getElementById('compose-note');
const news = document.getElementById('comment-news');

let config, rt, thread;
let commentSub = null;
/** seq -> <li> of every comment shown */
const shown = new Map();
/** sticker channel -> {sub, bar} */
const stickerSubs = new Map();
window.threadState = { reloads: 0, ready: false };

function watchStickers(channel, bar, lastId) {
  if (stickerSubs.has(channel)) return;
  const sub = rt.subscribe(channel, {
    lastId,
    onMessage: (payload, id) => { logRt(channel, 'message', id); bar.apply(payload?.counts, id); },
    onReset: (newest, id, _channel, reason) => { logRt(channel, 'reset', id, reason); bar.reset(newest, id); },
  });
  stickerSubs.set(channel, { sub, bar });
}

function setBanner(text) {
  banner.textContent = text;  // empty: hidden (CSS), and the live region stays in place
}

function commentNode(c, fresh) {
  const item = c.stickerChannel.replace(/^stickers\./, '');
  const bar = stickerBar(item, config.stickerKinds, c.stickers, undefined, { label: `Stickers for the comment by ${c.author}` });
  const li = el('li', { class: fresh ? 'comment fresh' : 'comment', dataset: { seq: String(c.seq) } },
    el('div', { class: 'avatar', style: `background:${avatarColour(c.author)}` }, c.author.charAt(0)),
    el('div', {},
      el('div', { class: 'comment-head' },
        el('span', { class: 'comment-author' }, c.author),
        el('span', { class: 'meta' }, timeAgo(c.at))),
      el('p', { class: 'comment-text' }, c.text),
      bar.node));
  return { li, bar };
}

/** Places `li` (comment `seq`) after every shown comment with a lower seq. */
function insertInOrder(li, seq) {
  let next = null;
  for (const [s, node] of shown) if (s > seq && (!next || s < Number(next.dataset.seq))) next = node;
  list.insertBefore(li, next ?? list.querySelector('.comment-pending'));
}

/**
 * Shows comment `c` unless it is shown already. `fresh`: it arrived while the page was
 * open (highlighted and read out); `mine`: posted from this page (not read out: the
 * poster knows).
 */
function addComment(c, fresh, mine = false) {
  if (shown.has(c.seq)) return false;
  const { li, bar } = commentNode(c, fresh);
  insertInOrder(li, c.seq);
  shown.set(c.seq, li);
  watchStickers(c.stickerChannel, bar, c.stickers.id ?? 0);
  updateCount();
  if (fresh && !mine) news.textContent = `New comment from ${c.author}: ${c.text}`;
  return true;
}

/** A placeholder for the comment being posted: shown at once, with no seq yet. */
function pendingNode(author, text) {
  const li = el('li', { class: 'comment-pending', 'aria-busy': 'true' },
    el('div', { class: 'avatar', style: `background:${avatarColour(author)}` }, author.charAt(0)),
    el('div', {},
      el('div', { class: 'comment-head' },
        el('span', { class: 'comment-author' }, author),
        el('span', { class: 'meta' }, 'posting…')),
      el('p', { class: 'comment-text' }, text)));
  list.querySelector('.empty')?.remove();
  list.append(li);
  return li;
}

function updateCount() {
  const k = shown.size;
  title.textContent = k === 1 ? '1 comment' : `${k} comments`;
  list.querySelector('.empty')?.remove();
  if (k === 0 && !list.querySelector('.comment-pending')) list.append(el('li', { class: 'empty' }, 'No comments yet. Be the first.'));
}

function renderPost(t) {
  const bar = stickerBar(t.stickerChannel.replace(/^stickers\./, ''), config.stickerKinds, t.stickers, undefined,
    { label: `Stickers for ${t.title}` });
  postNode.replaceChildren(
    el('img', { src: `/img/${t.n}.svg`, alt: t.title, width: '480', height: '320' }),
    el('div', { class: 'post-body' },
      el('h1', {}, t.title),
      el('div', { class: 'meta' }, `posted by ${t.author} · ${timeAgo(t.createdAt)}`),
      bar.node));
  document.title = `${t.title} — Skyline`;
  watchStickers(t.stickerChannel, bar, t.stickers.id ?? 0);
}

function subscribeComments(lastId) {
  commentSub = rt.subscribe(thread.channel, {
    lastId,
    onMessage: (payload, id) => {
      logRt(thread.channel, 'message', id);
      if (!payload?.comment) return;
      const pending = pendingOf(payload.comment);
      addComment({ ...payload.comment, id }, true, !!pending);
      pending?.remove();
    },
    onReset: (newest, id, _channel, reason) => {
      logRt(thread.channel, 'reset', id, reason);
      // Not from inside the client's callback: unsubscribe and reload just after it.
      setTimeout(reloadAfterReset, 0);
    },
  });
}

/**
 * Loads the thread from the backend and shows every comment not shown yet.
 * Resolves with the id to poll the comment channel from.
 */
async function load() {
  const data = await api('GET', `/api/threads/${n}`);
  if (!thread) renderPost(data.thread);
  thread = data.thread;
  for (const c of data.comments) addComment(c, false);
  updateCount();
  return data.resumeId;
}

/**
 * The placeholder of comment `c` when this page is posting it right now (rt delivered it
 * before the backend answered), else null.
 */
function pendingOf(c) {
  for (const li of list.querySelectorAll('.comment-pending')) {
    if (li.querySelector('.comment-author').textContent === c.author && li.querySelector('.comment-text').textContent === c.text) return li;
  }
  return null;
}

let reloading = false;
async function reloadAfterReset() {
  if (reloading) return;
  reloading = true;
  commentSub?.unsubscribe();
  commentSub = null;
  window.threadState.reloads++;
  setBanner('Connection was interrupted for a while — catching up…');
  for (let delay = 500; ; delay = Math.min(delay * 2, 8000)) {
    try {
      const resumeId = await load();
      subscribeComments(resumeId);
      setBanner('');
      break;
    } catch (err) {
      setBanner(`Could not reload the comments (${err.message}); retrying…`);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
  reloading = false;
}

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const author = authorInput.value.trim();
  const text = textInput.value.trim();
  if (!author || !text) return;
  localStorage.setItem('skyline-name', author);
  // The button stays enabled (disabling it would drop a keyboard user's focus): the box is
  // emptied at once, so a second submit posts a second comment, never the same one twice.
  composeNote.className = 'note';
  composeNote.textContent = 'Posting…';
  textInput.value = '';
  const pending = pendingNode(author, text);
  try {
    const r = await api('POST', `/api/threads/${n}/comments`, { author, text });
    pending.remove();
    // Shown already when rt delivered it before the backend answered.
    if (r.comment) addComment(r.comment, true, true);
    composeNote.textContent = 'Posted.';
  } catch (err) {
    pending.remove();
    updateCount();
    if (!textInput.value) textInput.value = text;  // nothing was stored: let them try again
    composeNote.className = 'note error';
    composeNote.textContent = `Not posted: ${err.message}`;
  }
});

async function main() {
  authorInput.value = localStorage.getItem('skyline-name') ?? '';
  config = await loadConfig();
  rt = await startRt(config);
  subscribeComments(await load());
  note.textContent = 'New comments appear live';
  window.threadState.ready = true;
}

main().catch((err) => {
  console.error(err);
  setBanner(`Could not load this thread: ${err.message}`);
});
