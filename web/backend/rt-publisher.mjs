// Talks to rt-server on behalf of the application: publishes over POST /publish
// with the bearer token (kept here, server-side: browsers never see it) and reads a
// channel's current message id.
//
// Contract: every function resolves or rejects exactly once, within `timeoutMs`;
// a rejection carries an Error whose message says what failed (HTTP status, rt's
// {"error": ...} text, or the network error).

const MAX_SAFE_ID = '9007199254740991'; // 2^53 - 1, the largest m the protocol accepts

export class RtPublisher {
  /**
   * @param {object} opts
   * @param {string} opts.rtUrl      base URL of rt-server as seen from this backend
   * @param {string} opts.token      bearer token for POST /publish
   * @param {number} [opts.timeoutMs] per request
   */
  constructor({ rtUrl, token, timeoutMs = 3000 }) {
    this.rtUrl = rtUrl.replace(/\/+$/, '');
    this.token = token;
    this.timeoutMs = timeoutMs;
  }

  /**
   * Publishes `payload` (any JSON value) on `channel` keeping `backlog` messages.
   * Resolves with the message id rt assigned.
   */
  async publish(channel, payload, backlog) {
    const url = `${this.rtUrl}/publish?c=${encodeURIComponent(channel)}&backlog=${backlog}`;
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Authorization': `Bearer ${this.token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(payload),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`rt publish ${channel}: HTTP ${res.status} ${text.slice(0, 200)}`);
    const body = JSON.parse(text);
    if (!Number.isSafeInteger(body.id)) throw new Error(`rt publish ${channel}: no id in ${text.slice(0, 200)}`);
    return body.id;
  }

  /**
   * Resolves with the channel's newest message id (0 when it has none), as rt sees
   * it now. Uses the protocol's own rule: asking with a last id above any real id
   * (2^53-1) always gets an immediate `reset` carrying the current id.
   */
  async currentId(channel) {
    const url = `${this.rtUrl}/rt?c=${encodeURIComponent(channel)}&m=${MAX_SAFE_ID}`;
    const res = await fetch(url, { signal: AbortSignal.timeout(this.timeoutMs) });
    const text = await res.text();
    if (!res.ok) throw new Error(`rt current id ${channel}: HTTP ${res.status} ${text.slice(0, 200)}`);
    const entry = JSON.parse(text)[channel];
    if (!entry || entry.status !== 'reset' || !Number.isSafeInteger(entry.id)) {
      throw new Error(`rt current id ${channel}: unexpected answer ${text.slice(0, 200)}`);
    }
    return entry.id;
  }
}
