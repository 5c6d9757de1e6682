// rt-core.mjs — loads rt-core.wasm and wraps its plain C exports (bindings.cpp) as class
// `Core`, the interface host.mjs uses: `createRtCore({wasmBinary?, locateFile?})` resolves to
// `{Core}`; every Core method takes and returns what the same-named WasmCore method does
// (plain values in, JSON text out). This replaces Emscripten's generated glue and embind, which
// were a quarter of what a page downloaded (see the README's "Size").
//
// The wasm is a standalone reactor (-sSTANDALONE_WASM --no-entry): it imports only a
// memory-growth notice and two WASI calls, all below.

// Each method: what it returns (j = JSON text, n = a number, v = nothing), then the kinds of
// its arguments after the core pointer: s = string (passed as pointer and length into a
// malloc'd copy), n = number, b = boolean. One line per RT_EXPORT of bindings.cpp.
const SIGS = {
  option: 'vsnns', init: 'j', subscribe: 'jnsnb', unsubscribe: 'jns', scrollItem: 'vsnnnnn', scrollBegin: 'jnnn',
  scrollMoved: 'jn', scrollMeasured: 'jnnnnn', scrollEnd: 'jn', bodyInvalid: 'vs', bodyNotObject: 'v',
  entry: 'vsbnsnnnsb', msg: 'vbnnnnbn', onAnswer: 'jnns', onResponse: 'jnnnss', onNetworkError: 'jnns',
  onProbe: 'jnnn', onTimer: 'jn', setOnline: 'jnb', setVisible: 'jnb', setPaused: 'jnb', close: 'jn',
  activePollUrls: 'j', lastId: 'ns',
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function instantiate(opts, imports) {
  if (opts.wasmBinary) return WebAssembly.instantiate(opts.wasmBinary, imports);
  const url = opts.locateFile ? opts.locateFile('rt-core.wasm', '') : new URL('./rt-core.wasm', import.meta.url);
  const get = () => fetch(url).then((r) => {
    if (!r.ok) throw new Error(`rt-core.wasm: HTTP ${r.status}`);
    return r;
  });
  try {
    return await WebAssembly.instantiateStreaming(get(), imports);
  } catch (e) {
    // Served without Content-Type application/wasm (or no streaming API): compile the bytes.
    return WebAssembly.instantiate(await (await get()).arrayBuffer(), imports);
  }
}

export default async function createRtCore(opts = {}) {
  let ex;
  let u8 = null;
  // The memory's buffer is replaced whenever the wasm grows its memory.
  const heap = () => (u8 && u8.buffer === ex.memory.buffer ? u8 : (u8 = new Uint8Array(ex.memory.buffer)));
  const imports = {
    env: { emscripten_notify_memory_growth: () => {} },
    wasi_snapshot_preview1: {
      clock_time_get: (id, precision, p) => {
        new DataView(ex.memory.buffer).setBigUint64(p, BigInt(Date.now()) * 1000000n, true);
        return 0;
      },
      // abort(): out of memory. host.mjs reports the exception as fatal.
      proc_exit: (code) => { throw new WebAssembly.RuntimeError(`rt-core exited (${code})`); },
    },
  };
  ex = (await instantiate(opts, imports)).instance.exports;
  ex._initialize();

  class Core {
    constructor() { this.p = ex.rt_new(); }
    delete() { ex.rt_delete(this.p); }
  }
  for (const [name, sig] of Object.entries(SIGS)) {
    const fn = ex[`rt_${name}`];
    Core.prototype[name] = function (...a) {
      const args = [this.p];
      const bufs = [];
      try {
        for (let i = 1; i < sig.length; i++) {
          const v = a[i - 1];
          if (sig[i] === 's') {
            const b = encoder.encode(String(v));
            const p = ex.malloc(b.length || 1);
            bufs.push(p);
            heap().set(b, p);
            args.push(p, b.length);
          } else {
            args.push(sig[i] === 'b' ? (v ? 1 : 0) : +v);
          }
        }
        const r = fn(...args);
        if (sig[0] !== 'j') return r;
        const h = heap();
        return decoder.decode(h.subarray(r, h.indexOf(0, r)));
      } finally {
        for (const p of bufs) ex.free(p);
      }
    };
  }
  return { Core };
}
