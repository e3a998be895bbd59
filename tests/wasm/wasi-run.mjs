// Runs a wasm32-wasip1 program (here: the core's test binaries) in Node's V8,
// the engine family Envoy embeds. Used as cargo's runner for that target.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import process from 'node:process';
import v8 from 'node:v8';

// Node 20's WASI calls through TurboFan's fast API path crash the process
// now and then (SIGSEGV after the tests passed; 7 of 55 runs of the core's
// tests on a loaded machine, none of 125 with this flag). Set before any code
// is optimized, it keeps WASI calls on the regular path.
v8.setFlagsFromString('--no-turbo-fast-api-calls');

const [, , file, ...args] = process.argv;
// No filesystem access unless asked for: SCOPEGATE_WASI_PREOPEN=/guest=/host/dir
// (several pairs separated by ',') maps host directories into the guest, e.g.
// for examples/base64url_bench.rs reading the fuzz corpus.
const preopens = {};
for (const pair of (process.env.SCOPEGATE_WASI_PREOPEN ?? '').split(',')) {
  if (pair === '') continue;
  const eq = pair.indexOf('=');
  if (eq <= 0 || eq === pair.length - 1) {
    throw new Error(`SCOPEGATE_WASI_PREOPEN: expected /guest=/host/dir, got ${pair}`);
  }
  preopens[pair.slice(0, eq)] = pair.slice(eq + 1);
}
const wasi = new WASI({
  version: 'preview1',
  args: [file, ...args],
  env: {},
  preopens,
  returnOnExit: true,
});
// The filter's proxy-wasm host calls are linked in but never called by the
// core's tests; any call would throw and fail the test run.
const env = new Proxy({}, {
  get: (_, name) => () => {
    throw new Error(`proxy-wasm host call ${String(name)} in a core test`);
  },
});
const module = await WebAssembly.compile(await readFile(file));
const instance = await WebAssembly.instantiate(module, { ...wasi.getImportObject(), env });
// The filter exports `_initialize` (a reactor, as proxy-wasm hosts expect);
// a test binary is a command, so start it through `_start` alone.
const { _start, memory } = instance.exports;
process.exitCode = wasi.start({ exports: { _start, memory } });
