// Front page: an infinite scroll of pictures, each with live sticker counts.
// The rt client's watchScroll picks the channels: every item on screen at load,
// then, once scrolling has stopped for 1 s, the 40 items closest to the viewport.

import { loadConfig, startRt, logRt, api, el, timeAgo, stickerBar } from './common.mjs';

const BATCH = 60;
const feed = document.getElementById('feed');
const grid = document.getElementById('grid');
const feedEnd = document.getElementById('feed-end');
/** channel -> sticker bar of the card */
const bars = new Map();
let config;
let loaded = 0;
let total = Infinity;
let loading = null;

// One tab stop per card: its title link. The picture repeats the link for the mouse only;
// the sticker buttons are reached with the right arrow key from the link (and left arrow
// or Escape goes back), so Tab moves from card to card through a feed of hundreds.
function card(item) {
  // data-rt-last-id tells the client which message the card shows (it measures the
  // cards when it picks the channels to poll).
  let node;
  let link;
  const titleId = `item-${item.n}-title`;
  const bar = stickerBar(item.channel.replace(/^stickers\./, ''), config.stickerKinds, item.stickers,
    (id) => { node.dataset.rtLastId = String(id); },
    { label: `Stickers for ${item.title}`, tabStop: false, onLeave: () => link.focus() });
  bars.set(item.channel, bar);
  const href = `/thread.html?id=${item.n}`;
  const comments = item.comments === 1 ? '1 comment' : `${item.comments} comments`;
  link = el('a', {
    class: 'card-title', id: titleId, href, 'aria-describedby': 'card-keys',
    onkeydown: (ev) => { if (ev.key === 'ArrowRight' && !ev.altKey) { ev.preventDefault(); bar.focus(); } },
  }, item.title);
  node = el('article', {
    class: 'card', id: `item-${item.n}`, 'aria-labelledby': titleId,
    dataset: { rtChannel: item.channel, rtLastId: String(item.stickers.id ?? 0), n: String(item.n) },
  },
    el('a', { href, tabindex: '-1', 'aria-hidden': 'true' },
      el('img', { src: `/img/${item.n}.svg`, alt: '', loading: 'lazy', width: '480', height: '320' })),
    el('div', { class: 'card-body' },
      link,
      el('div', { class: 'meta' }, `by ${item.author} · ${timeAgo(item.createdAt)} · ${comments}`),
      bar.node));
  return node;
}

function loadMore() {
  if (loading || loaded >= total) return loading;
  loading = (async () => {
    grid.setAttribute('aria-busy', 'true');
    try {
      const page = await api('GET', `/api/items?offset=${loaded}&limit=${BATCH}`);
      total = page.total;
      const frag = document.createDocumentFragment();
      page.items.forEach((item, i) => {
        // Feed pattern: each article's position in the whole feed.
        const c = card(item);
        c.setAttribute('aria-posinset', String(loaded + i + 1));
        c.setAttribute('aria-setsize', String(total));
        frag.append(c);
      });
      grid.append(frag);
      loaded += page.items.length;
      feedEnd.textContent = loaded >= total ? `That's all ${total} pictures.` : 'Loading more…';
    } catch (err) {
      feedEnd.textContent = `Could not load more pictures (${err.message}). Scroll to retry.`;
    } finally {
      grid.setAttribute('aria-busy', 'false');
      loading = null;
    }
  })();
  return loading;
}

// The client hands the page the channel with every message.
function onMessage(payload, id, channel) {
  logRt(channel, 'message', id);
  bars.get(channel)?.apply(payload?.counts, id);
}
function onReset(newest, id, channel, reason) {
  logRt(channel, 'reset', id, reason);
  bars.get(channel)?.reset(newest, id);
}

async function main() {
  config = await loadConfig();
  await loadMore();
  const rt = await startRt(config);
  rt.watchScroll(feed, {
    itemSelector: '[data-rt-channel]',
    channelOf: (node) => node.dataset.rtChannel,
    onMessage, onReset, settleMs: 1000, closest: 40,
  });
  // Load the next batch before the reader reaches the end.
  feed.addEventListener('scroll', loadWhileNearEnd, { passive: true });
}

/** Loads batches until the end of the feed is more than a screen or two away. */
async function loadWhileNearEnd() {
  while (loaded < total && feed.scrollTop + feed.clientHeight > feed.scrollHeight - 1500) {
    const before = loaded;
    await loadMore();
    if (loaded === before) break; // failed: the next scroll retries
  }
}

main().catch((err) => {
  console.error(err);
  feedEnd.textContent = `Something went wrong: ${err.message}`;
});
