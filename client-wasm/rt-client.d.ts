// Types of rt-client.mjs, the public API of the rt WebAssembly client.
// See client-wasm/README.md for the behaviour behind each member.

/** Connection state: see README "Status". */
export type ConnState = 'connecting' | 'live' | 'retrying' | 'offline' | 'error' | 'disconnected';

export interface Status {
  readonly state: ConnState;
  /** retrying/error: failures in a row (of the worst poll group). 0 otherwise. */
  readonly attempt: number;
  /** retrying/error: milliseconds until the next try; -1 when none is scheduled. */
  readonly retryInMs: number;
  /** retrying/error: the HTTP status that failed (200 for a malformed body); 0 for none. */
  readonly httpStatus: number;
  /** retrying/error: a short sentence ("network error: ...", "HTTP 503", ...). */
  readonly reason: string;
  /** 0 while live; otherwise milliseconds since the client was last live (what the page shows
   *  may be that old); -1 when it never was. Fresh on every status() call. */
  readonly lagMs: number;
}

/** Why a reset: `behind` (away too long: the backlog no longer reaches back to the last id,
 *  or a state channel moved on) or `lost` (history as Redis has it no longer contains the
 *  last id: flushed, expired, rolled back, or a break in the chain the client detected). */
export type ResetReason = 'behind' | 'lost';

/** A JSON value, as published. */
export type Payload = unknown;

/** The newest message handed over with a reset, or null when the channel's backlog is empty. */
export type Newest = { id: number; payload: Payload } | null;

export type MessageHandler = (payload: Payload, id: number, channel: string) => void;
export type ResetHandler = (newest: Newest, resetId: number, channel: string, reason: ResetReason) => void;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ClientOptions {
  /** Origin of the rt server, e.g. 'http://127.0.0.1:8080' (default: location.origin). No trailing path. */
  baseUrl?: string;
  /** Path of the poll endpoint. Default '/rt'. */
  path?: string;
  /** Maximum bytes of one poll URL, everything counted. Default 4096. */
  urlBudget?: number;
  /** Maximum channels in one poll (the server's limit). Default 500. */
  maxChannelsPerPoll?: number;
  /** The server's poll timeout. Default 30000. */
  pollTimeoutMs?: number;
  /** A poll with no answer after pollTimeoutMs + deadlineMarginMs is aborted and retried. Default 5000. */
  deadlineMarginMs?: number;
  /** 'live' needs a real answer: a poll unanswered this long is checked by one probe (GET probePath,
   *  low priority, so it queues behind the poll in a browser at its connection limit). Default 1000. */
  probeAfterMs?: number;
  /** Path of the probe. Default: the poll path with its last segment replaced by 'healthz'
   *  ('/rt' -> '/healthz'). '' disables probes: live only after a poll's answer. */
  probePath?: string;
  /** First retry after a failure: random in [0, firstRetryMaxMs]. Default 200. */
  firstRetryMaxMs?: number;
  /** Later retries: random in [0, min(backoffCapMs, backoffBaseMs * 2^(n-1))]. Defaults 250 / 10000. */
  backoffBaseMs?: number;
  backoffCapMs?: number;
  /** Upper bound applied to a server's Retry-After. Default 300000. */
  maxRetryAfterMs?: number;
  /** Default settle time of watchScroll. Default 1000. */
  settleMs?: number;
  /** Default number of channels watchScroll keeps. Default 40. */
  closest?: number;
  /** Seed of the jitter/cachebreak randomness (default: crypto.getRandomValues). */
  seed?: number;
  /** fetch to use (tests). Default globalThis.fetch. */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** One poll for all tabs of the origin (Web Locks + BroadcastChannel; see README "Tabs").
   *  Default true where the browser has both; false: this client polls on its own. */
  shareTabs?: boolean;
  /** credentials mode of the poll requests. Default 'same-origin'. */
  credentials?: RequestCredentials;
  /** The wasm bytes (required in Node: its fetch cannot read a file: URL). */
  wasmBinary?: ArrayBuffer | Uint8Array;
  /** Where to fetch rt-core.wasm. Default new URL('./rt-core.wasm', import.meta.url). */
  wasmUrl?: string | URL;
  /** Time source and timers (tests). Default performance.now / setTimeout. */
  clock?: Clock;
  /** Event sources; null disables (tests). Defaults: globalThis.window/document/navigator. */
  window?: EventTarget | null;
  document?: Document | null;
  navigator?: { onLine?: boolean } | null;
  /** Receives exceptions thrown by page callbacks and fatal errors. Default console.error. */
  onError?: (error: unknown) => void;
}

interface SubscribeCommon {
  onMessage: MessageHandler;
}
/** Where to start: exactly one of lastId (resume) and from: 'now'. */
type SubscribeStart =
  /** Newest id the page already shows (0: everything the backlog holds). Messages with id <= the channel's last id are never delivered. */
  | { lastId: number; from?: never }
  /** Only messages published after the server answered the subscription's first poll. */
  | { from: 'now'; lastId?: never };
/** A stream channel (default): every message matters, so a reset must reach the page. */
type StreamKind = { kind?: 'stream'; onReset: ResetHandler };
/** A state channel: its newest message is the whole state; without onReset it goes to onMessage. */
type StateKind = { kind: 'state'; onReset?: ResetHandler };
export type SubscribeOptions = SubscribeCommon & SubscribeStart & (StreamKind | StateKind);

export interface Subscription {
  readonly channel: string;
  /** The channel's last id (what the page has been given). */
  lastId(): number;
  /** Stops delivery to this subscription. The channel's last id is kept. Idempotent. */
  unsubscribe(): void;
}

export interface ScrollItemMeasure {
  channel: string;
  rect: { top: number; left: number; bottom: number; right: number };
  lastId?: number;
}

export interface ScrollMeasure {
  viewport: { top: number; left: number; bottom: number; right: number };
  items: ScrollItemMeasure[];
}

export interface WatchScrollOptions {
  /** Items inside the container. Default '[data-rt-channel]'. */
  itemSelector?: string;
  /** Channel of an item. Default el => el.dataset.rtChannel. */
  channelOf?: (el: Element) => string | null | undefined;
  /** Newest id an item already shows. Default el => Number(el.dataset.rtLastId || 0). */
  lastIdOf?: (el: Element) => number | string | null | undefined;
  onMessage: MessageHandler;
  onReset?: ResetHandler;
  /** Scrolling counts as stopped after this long without scroll events. Default: client's settleMs (1000). */
  settleMs?: number;
  /** Channels kept once scrolling stopped. Default: client's closest (40). */
  closest?: number;
  /** No-DOM mode: positions come from this function and scrolling is reported with notifyScroll(). */
  measure?: () => ScrollMeasure;
}

export interface ScrollWatch {
  /** Drops the watcher's channels (ids kept) and its listeners. */
  stop(): void;
  /** Reports a scroll (needed only with the `measure` option). */
  notifyScroll(): void;
  /** Measures now and keeps the closest items (e.g. after the page appended items). */
  refresh(): void;
}

export interface RtClient {
  /** Throws TypeError for an invalid channel name (1..128 bytes of A-Z a-z 0-9 _ . : -) or lastId,
   *  neither or both of lastId / from, and a stream channel without onReset. */
  subscribe(channel: string, options: SubscribeOptions): Subscription;
  /** One watcher per client: a second call stops the first. container null = the window scrolls. */
  watchScroll(container: Element | Document | null, options: WatchScrollOptions): ScrollWatch;
  /** Calls cb now with the current status, then on every change. Returns a function that removes cb. */
  onStatus(cb: (status: Status) => void): () => void;
  status(): Status;
  /** Last id of a channel (0 when unknown). */
  lastId(channel: string): number;
  /** URLs of the polls in flight (debugging and tests). With shared tabs: this tab's polls,
   *  which the leader tab merges into its real requests. */
  activePollUrls(): string[];
  /** 'leader': this tab makes the real requests for every tab of the origin; 'follower': its
   *  polls go through the leader; 'alone': not shared. */
  tabRole(): 'leader' | 'follower' | 'alone' | 'closed';
  /** Drives connectivity / visibility by hand (tests, or pages without window events). */
  setOnline(online: boolean): void;
  setVisible(visible: boolean): void;
  /** Stops polling (status 'disconnected'), keeping every subscription and last id. Idempotent. */
  disconnect(): void;
  /** Resumes after disconnect() from the same ids. Idempotent. */
  connect(): void;
  /** Aborts every poll, removes every listener. The client cannot be used afterwards. */
  close(): void;
}

/** Loads the wasm core (once per page) and creates a client. Rejects with TypeError on invalid options. */
export function createClient(options?: ClientOptions): Promise<RtClient>;
