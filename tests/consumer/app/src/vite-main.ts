// Vite entry: ?url gives the wasm's URL; the default location is Vite's own rewrite of the
// package's new URL('./rt-core.wasm', import.meta.url).
import wasmUrl from 'rt-client/rt-core.wasm?url';
import { run } from './app.js';

await run(wasmUrl);
