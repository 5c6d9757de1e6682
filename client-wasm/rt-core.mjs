// rt-core.mjs — loads rt-core.wasm and wraps its plain C exports (bindings.cpp) as class
// `Core`, the interface host.mjs uses: `createRtCore({wasmBinary?, locateFile?})` resolves to
// `{Core}`; every Core method takes and returns what the same-named WasmCore method does
// (JSON text in, JSON text out). This replaces Emscripten's generated glue and embind, which
// were a quarter of what a page downloaded (see the README's "Size").
//
// The wasm is a standalone reactor (-sSTANDALONE_WASM --no-entry): it imports only the two
// float conversions of wasm_shims.cpp, a memory-growth notice and two WASI calls, all below.

// Argument kinds of each method after the core pointer: s = string (passed as pointer and
// length into a malloc'd copy), n = number, b = boolean. Every method returns JSON text,
// except lastId (a number). One line per RT_EXPORT of bindings.cpp.
const SIGS = {
  init: 's', subscribe: 'nsnb', unsubscribe: 'ns', scrollBegin: 'nsnn', scrollMoved: 'n',
  scrollMeasured: 'ns', scrollEnd: 'n', onResponse: 'nnnss', onNetworkError: 'nns', onProbe: 'nnn', onTimer: 'n',
  setOnline: 'nb', setVisible: 'nb', setPaused: 'nb', close: 'n', activePollUrls: '', lastId: 's',
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
    env: {
      // Numbers in JSON are ASCII: no UTF-8 decoding needed either way.
      rt_js_parse_float: (p, n) => parseFloat(String.fromCharCode(...heap().subarray(p, p + n))),
      rt_js_to_exponential: (v, digits, buf, cap) => {
        const s = v.toExponential(digits - 1);
        const h = heap();
        let i = 0;
        for (; i < s.length && i < cap - 1; i++) h[buf + i] = s.charCodeAt(i);
        h[buf + i] = 0;
        return s.length;
      },
      emscripten_notify_memory_growth: () => {},
    },
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
        for (let i = 0; i < sig.length; i++) {
          if (sig[i] === 's') {
            const b = encoder.encode(String(a[i]));
            const p = ex.malloc(b.length || 1);
            bufs.push(p);
            heap().set(b, p);
            args.push(p, b.length);
          } else {
            args.push(sig[i] === 'b' ? (a[i] ? 1 : 0) : +a[i]);
          }
        }
        const r = fn(...args);
        if (name === 'lastId') return r;
        const h = heap();
        return decoder.decode(h.subarray(r, h.indexOf(0, r)));
      } finally {
        for (const p of bufs) ex.free(p);
      }
    };
  }
  return { Core };
}
