// The demo application: pictures (each one opens a thread), comments and stickers,
// kept in memory, published through rt.
//
// Channels (names are the contract between this file and the pages in web/public/js):
//   thread.<n>              stream channel: one message per new comment of thread n
//   stickers.image.<n>      state channel (backlog 1): full sticker counts of picture n
//   stickers.comment.<n>-<s> state channel (backlog 1): full counts of comment s of thread n
//
// Consistency: every write to a thread (a comment) and every read of it ("load the
// comments + the id to resume from") runs through one queue per thread, and a
// comment is stored only after rt has given it an id. So a load sees every comment
// whose id is at or below the resume id it returns, and none above: a page that
// renders the load and then polls rt from that id misses nothing and shows nothing
// twice. Stickers use one queue per item in the same way.

import { KeyedQueue } from './keyed-queue.mjs';
import { seedItem } from './seed.mjs';

export const STICKER_KINDS = ['heart', 'star', 'sun', 'bolt'];

export class HttpError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export const threadChannel = (n) => `thread.${n}`;
export const stickerChannel = (item) => `stickers.${item}`;

export class DemoApp {
  /**
   * @param {object} opts
   * @param {import('./rt-publisher.mjs').RtPublisher} opts.rt
   * @param {number} opts.items         number of pictures (threads)
   * @param {number} opts.commentBacklog backlog kept by rt for each thread channel
   */
  constructor({ rt, items, commentBacklog }) {
    this.rt = rt;
    this.commentBacklog = commentBacklog;
    this.queue = new KeyedQueue();
    this.pictures = [];
    const now = Date.now();
    for (let n = 1; n <= items; n++) {
      const s = seedItem(n, now);
      this.pictures.push({
        n, title: s.title, author: s.author, createdAt: s.createdAt,
        stickers: { counts: s.stickers, id: 0 },
        comments: s.comments.map((c, i) => ({ seq: i + 1, id: 0, ...c, stickers: { counts: {}, id: 0 } })),
        lastRtId: 0, // rt id of the newest stored comment (0: none published yet)
      });
    }
  }

  picture(n) {
    const p = Number.isSafeInteger(n) ? this.pictures[n - 1] : undefined;
    if (!p) throw new HttpError(404, `no picture ${n}`);
    return p;
  }

  /** One page of the front page's feed. */
  listItems(offset, limit) {
    const slice = this.pictures.slice(offset, offset + limit);
    return {
      total: this.pictures.length,
      items: slice.map((p) => ({
        n: p.n, title: p.title, author: p.author, createdAt: p.createdAt,
        comments: p.comments.length, channel: stickerChannel(`image.${p.n}`),
        stickers: { ...p.stickers, counts: { ...p.stickers.counts } },
      })),
    };
  }

  /**
   * A thread with its comments and `resumeId`: the id to poll thread.<n> from.
   * resumeId is rt's current id of the channel, read inside the thread's queue (no
   * publish of ours can run in between), so it equals the id of the newest stored
   * comment, except when rt has lost or rolled back the channel's history (Redis
   * flushed, keys expired, restarted from an older snapshot, failed over): then it is
   * the id of the history Redis has now (0, or an older id), and the page resumes from
   * there: the next comment names it as its prev. Ids are compared, never counted
   * (they are not dense). If rt cannot be asked, the id of the newest stored comment
   * is used.
   */
  loadThread(n) {
    const p = this.picture(n);
    return this.queue.run(`thread:${n}`, async () => {
      let resumeId = p.lastRtId;
      try {
        resumeId = await this.rt.currentId(threadChannel(n));
      } catch (err) {
        console.warn(`backend: ${err.message}; resuming thread ${n} from stored id ${resumeId}`);
      }
      return {
        thread: { n: p.n, title: p.title, author: p.author, createdAt: p.createdAt,
          channel: threadChannel(n), stickers: { ...p.stickers, counts: { ...p.stickers.counts } },
          stickerChannel: stickerChannel(`image.${n}`) },
        comments: p.comments.map((c) => this.commentView(n, c)),
        resumeId,
      };
    });
  }

  commentView(n, c) {
    return { seq: c.seq, id: c.id, author: c.author, text: c.text, at: c.at,
      stickerChannel: stickerChannel(`comment.${n}-${c.seq}`),
      stickers: { counts: { ...c.stickers.counts }, id: c.stickers.id } };
  }

  /** Publishes, then stores, a new comment. Resolves with {seq, id, comment}. */
  postComment(n, author, text) {
    const p = this.picture(n);
    author = String(author ?? '').trim();
    text = String(text ?? '').trim();
    if (!author || author.length > 40) throw new HttpError(400, 'author must be 1 to 40 characters');
    if (!text || text.length > 2000) throw new HttpError(400, 'text must be 1 to 2000 characters');
    return this.queue.run(`thread:${n}`, async () => {
      const c = { seq: p.comments.length + 1, author, text, at: Date.now(),
        stickers: { counts: {}, id: 0 } };
      const payload = { comment: this.commentView(n, { ...c, id: 0 }) };
      delete payload.comment.id; // the message's own id is the comment's id
      let id;
      try {
        id = await this.rt.publish(threadChannel(n), payload, this.commentBacklog);
      } catch (err) {
        throw new HttpError(502, `could not publish the comment: ${err.message}`);
      }
      c.id = id;
      p.comments.push(c);
      p.lastRtId = id;
      // The poster's page shows the comment from this answer at once (rt brings it too).
      return { seq: c.seq, id, comment: this.commentView(n, c) };
    });
  }

  /**
   * Adds one sticker of `kind` to `item` ("image.<n>" or "comment.<n>-<seq>") and
   * publishes the item's full counts on its state channel. Resolves with
   * {counts, id}. Counts change only if the publish succeeded.
   */
  addSticker(item, kind) {
    if (!STICKER_KINDS.includes(kind)) throw new HttpError(400, `kind must be one of ${STICKER_KINDS.join(', ')}`);
    const holder = this.stickerHolder(item);
    return this.queue.run(`stickers:${item}`, async () => {
      const counts = { ...holder.stickers.counts, [kind]: (holder.stickers.counts[kind] || 0) + 1 };
      let id;
      try {
        id = await this.rt.publish(stickerChannel(item), { item, counts }, 1);
      } catch (err) {
        throw new HttpError(502, `could not publish the sticker: ${err.message}`);
      }
      holder.stickers = { counts, id };
      return { counts, id };
    });
  }

  stickerHolder(item) {
    let m = /^image\.(\d{1,9})$/.exec(item);
    if (m) return this.picture(Number(m[1]));
    m = /^comment\.(\d{1,9})-(\d{1,9})$/.exec(item);
    if (m) {
      const c = this.picture(Number(m[1])).comments[Number(m[2]) - 1];
      if (c) return c;
    }
    throw new HttpError(404, `no item ${item}`);
  }
}
