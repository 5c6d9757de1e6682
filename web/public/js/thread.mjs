// Thread page: a picture, its comments (stream channel thread.<n>) and sticker
// counts on the picture and on every comment (one state channel each).
//
// Comments are shown in the order rt delivers them, each once (keyed by the
// backend's per-thread sequence number). On a reset of the comment channel the
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
const postButton = document.getElementById('post-button');
const composeNote = document.getElementById('compose-note');

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

function commentNode(c, fresh) {
  const item = c.stickerChannel.replace(/^stickers\./, '');
  const bar = stickerBar(item, config.stickerKinds, c.stickers);
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

function addComment(c, fresh) {
  if (shown.has(c.seq)) return;
  const { li, bar } = commentNode(c, fresh);
  shown.set(c.seq, li);
  list.append(li);
  watchStickers(c.stickerChannel, bar, c.stickers.id ?? 0);
  updateCount();
}

function updateCount() {
  const k = shown.size;
  title.textContent = k === 1 ? '1 comment' : `${k} comments`;
  list.querySelector('.empty')?.remove();
  if (k === 0) list.append(el('li', { class: 'empty' }, 'No comments yet. Be the first.'));
}

function renderPost(t) {
  const bar = stickerBar(t.stickerChannel.replace(/^stickers\./, ''), config.stickerKinds, t.stickers);
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
      if (payload?.comment) addComment({ ...payload.comment, id }, true);
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

let reloading = false;
async function reloadAfterReset() {
  if (reloading) return;
  reloading = true;
  commentSub?.unsubscribe();
  commentSub = null;
  window.threadState.reloads++;
  banner.hidden = false;
  banner.textContent = 'Connection was interrupted for a while — catching up…';
  for (let delay = 500; ; delay = Math.min(delay * 2, 8000)) {
    try {
      const resumeId = await load();
      subscribeComments(resumeId);
      banner.hidden = true;
      break;
    } catch (err) {
      banner.textContent = `Could not reload the comments (${err.message}); retrying…`;
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
  postButton.disabled = true;
  composeNote.className = 'note';
  composeNote.textContent = 'Posting…';
  try {
    await api('POST', `/api/threads/${n}/comments`, { author, text });
    textInput.value = '';
    composeNote.textContent = 'Posted.';
  } catch (err) {
    composeNote.className = 'note error';
    composeNote.textContent = `Not posted: ${err.message}`;
  } finally {
    postButton.disabled = false;
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
  banner.hidden = false;
  banner.textContent = `Could not load this thread: ${err.message}`;
});
