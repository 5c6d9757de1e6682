// Shared by both pages: configuration, the rt client, the live-status pill and
// sticker bars.
//
// Test hooks (read by e2e/): window.rt is the rt client; window.rtLog lists what
// the client handed to the page, in order: {channel, kind: 'message'|'reset', id}.

export const STICKER_ICONS = {
  heart: '<path d="M12 21s-7.5-4.6-9.6-9.3C.9 8.2 3 4.5 6.6 4.5c2.1 0 3.7 1.2 5.4 3.1 1.7-1.9 3.3-3.1 5.4-3.1 3.6 0 5.7 3.7 4.2 7.2C19.5 16.4 12 21 12 21z"/>',
  star: '<path d="M12 2.5l2.9 6.1 6.6.8-4.9 4.6 1.3 6.6L12 17.3l-5.9 3.3 1.3-6.6-4.9-4.6 6.6-.8z"/>',
  sun: '<circle cx="12" cy="12" r="5"/><path d="M11 1h2v4h-2zM11 19h2v4h-2zM1 11h4v2H1zM19 11h4v2h-4zM4.2 5.6l1.4-1.4 2.8 2.8L7 8.4zM15.6 17l1.4-1.4 2.8 2.8-1.4 1.4zM4.2 18.4L7 15.6 8.4 17l-2.8 2.8zM15.6 7l2.8-2.8 1.4 1.4L17 8.4z"/>',
  bolt: '<path d="M13.5 1.5L4 13.5h6.5l-1.5 9 9.5-12H12z"/>',
};
export const STICKER_LABELS = { heart: 'Love', star: 'Star', sun: 'Sunny', bolt: 'Electric' };

export async function loadConfig() {
  const res = await fetch('/api/config');
  if (!res.ok) throw new Error(`config: HTTP ${res.status}`);
  return res.json();
}

/**
 * Creates the rt client. ?budget=N in the page's URL lowers the client's URL
 * budget (the e2e tests use it to force split polls).
 */
export async function startRt(config) {
  const { createClient } = await import('/client/rt-client.mjs');
  const params = new URLSearchParams(location.search);
  const options = { baseUrl: config.rtUrl };
  const budget = Number.parseInt(params.get('budget') ?? '', 10);
  if (Number.isInteger(budget) && budget > 0) options.urlBudget = budget;
  const rt = await createClient(options);
  window.rt = rt;
  window.rtLog = [];
  const pill = document.querySelector('.status');
  const retry = document.getElementById('retry');
  const labels = { connecting: 'Connecting…', live: 'Live', retrying: 'Reconnecting…', offline: 'Offline', error: 'Live updates stopped' };
  rt.onStatus((st) => {
    const s = typeof st === 'string' ? st : st.state;
    if (!pill) return;
    pill.dataset.status = s;
    pill.textContent = labels[s] ?? s;
    pill.title = st.reason ?? '';
    // While the client waits to try again, the reader may ask for the attempt now.
    if (retry) retry.hidden = s !== 'error' && s !== 'retrying';
  });
  // Going offline and back online aborts the waiting and polls again at once, with a
  // fresh backoff (the client's public API for connectivity changes).
  retry?.addEventListener('click', () => {
    if (navigator.onLine === false) return;
    retry.hidden = true;
    rt.setOnline(false);
    rt.setOnline(true);
  });
  return rt;
}

export function logRt(channel, kind, id, reason) {
  window.rtLog?.push(reason === undefined ? { channel, kind, id } : { channel, kind, id, reason });
}

export async function api(method, path, body) {
  const res = await fetch(path, {
    method, headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error || `HTTP ${res.status}`);
  return data;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c != null) node.append(c);
  return node;
}

export function timeAgo(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.round(h / 24);
  return `${d} day${d > 1 ? 's' : ''} ago`;
}

/**
 * A row of sticker buttons for `item` ("image.<n>" or "comment.<n>-<seq>"), kept
 * in step with its state channel. Returns {node, apply(counts, id), reset(newest, id),
 * focus()}. Messages older than the newest one shown are ignored (a button click shows the
 * counts from the backend's answer before the same message arrives through rt);
 * a reset is always applied: it moves the bar to the channel's history as rt has it now.
 *
 * Keyboard: the row is a toolbar, one tab stop (roving tabindex), arrow keys, Home and
 * End move between its buttons. With `tabStop: false` none of its buttons is a tab stop
 * (a front-page card: its link is the card's one tab stop, and the right arrow key on it
 * calls focus()); Escape, or the left arrow key on the first button, calls `onLeave`.
 */
export function stickerBar(item, kinds, initial, onShown = () => {}, { label = 'Stickers', tabStop = true, onLeave } = {}) {
  let shownId = initial.id ?? 0;
  const node = el('div', { class: 'stickers', role: 'toolbar', 'aria-label': label, dataset: { item } });
  const buttons = {};
  const order = [];
  let current = 0;
  for (const kind of kinds) {
    const count = el('span', { class: 'count' }, String(initial.counts[kind] ?? 0));
    const btn = el('button', {
      class: 'sticker', type: 'button', title: STICKER_LABELS[kind] ?? kind, 'aria-label': `${STICKER_LABELS[kind] ?? kind} sticker`,
      tabindex: tabStop && order.length === 0 ? '0' : '-1',
      dataset: { kind },
      onclick: async () => {
        // Not `disabled`: a disabled button drops the keyboard focus.
        if (btn.getAttribute('aria-busy') === 'true') return;
        btn.setAttribute('aria-busy', 'true');
        try {
          const r = await api('POST', `/api/stickers/${item}`, { kind });
          apply(r.counts, r.id);
        } catch (err) {
          console.warn('sticker:', err.message);
        } finally {
          btn.removeAttribute('aria-busy');
        }
      },
    });
    btn.innerHTML = `<svg viewBox="0 0 24 24" aria-hidden="true">${STICKER_ICONS[kind] ?? ''}</svg>`;
    btn.append(count);
    buttons[kind] = { btn, count };
    order.push(btn);
    node.append(btn);
  }
  function focusAt(i) {
    if (!order.length) return;
    current = Math.max(0, Math.min(order.length - 1, i));
    if (tabStop) order.forEach((b, k) => b.setAttribute('tabindex', k === current ? '0' : '-1'));
    order[current].focus();
  }
  node.addEventListener('keydown', (ev) => {
    const i = order.indexOf(document.activeElement);
    if (i < 0 || ev.altKey || ev.ctrlKey || ev.metaKey) return;
    const to = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: order.length - 1 }[ev.key];
    if (ev.key === 'Escape' || (to === -1 && onLeave)) {
      if (onLeave) { ev.preventDefault(); onLeave(); }
      return;
    }
    if (to === undefined) return;
    ev.preventDefault();
    focusAt(to);
  });
  function show(counts) {
    for (const [kind, { btn, count }] of Object.entries(buttons)) {
      const v = String(counts?.[kind] ?? 0);
      if (count.textContent !== v) {
        count.textContent = v;
        btn.classList.remove('bumped');
        void btn.offsetWidth; // restart the animation
        btn.classList.add('bumped');
      }
    }
  }
  function apply(counts, id) {
    if (id <= shownId) return;
    shownId = id;
    show(counts);
    onShown(shownId);
  }
  function reset(newest, id) {
    shownId = newest ? newest.id : id;
    if (newest) show(newest.payload?.counts);
    onShown(shownId);
  }
  return { node, apply, reset, focus: () => focusAt(tabStop ? current : 0) };
}

export const AVATAR_COLOURS = ['#3451d1', '#12805c', '#b54708', '#9e3fb1', '#0e7490', '#be185d', '#4d7c0f', '#7c3aed'];
export function avatarColour(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return AVATAR_COLOURS[h % AVATAR_COLOURS.length];
}
