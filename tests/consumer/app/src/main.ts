// esbuild entry: the file loader gives the wasm's URL.
import wasmUrl from 'rt-client/rt-core.wasm';
import { run } from './app.js';

await run(wasmUrl);
