// Measures the browser guide's numbers for docs/performance.md: the wasm size (raw and
// gzipped) and the time of one validation in Chromium, both the wasm `validate` call
// alone and a whole keystroke (the input handler: validate + render diagnostics + save
// state), median and 95th percentile of many runs. Timings vary with machine load.
//
//   npm run build && npm run perf        (node tests/web/perf.mjs [runs])
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const dist = fileURLToPath(new URL('../../web/dist/', import.meta.url));
const runs = Number(process.argv[2] ?? 2000);
const wasm = readFileSync(`${dist}pkg/keyshift_wasm_bg.wasm`);
const js = readFileSync(`${dist}pkg/keyshift_wasm.js`);
const gz = gzipSync(wasm, { level: 9 }).length;

const server = await serve(dist.replace(/\/$/, ''));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
const page = await browser.newPage();
await page.goto(server.url);
await page.waitForSelector('body[data-ready=true]');
await page.fill('#f-aws-mk-region', 'us-east-1');
await page.fill('#f-aws-mk-key', 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab');

const result = await page.evaluate(async (n) => {
  const ks = await import('/pkg/keyshift_wasm.js');
  const model = await import('/model.js');
  const stats = (xs) => {
    xs.sort((a, b) => a - b);
    return { median: xs[Math.floor(xs.length / 2)], p95: xs[Math.floor(xs.length * 0.95)] };
  };
  const state = model.defaultState();
  state.p.aws['mk.region'] = 'us-east-1';
  state.p.aws['mk.key'] = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  state.p.aws['cred.accessKeyId'] = 'env:AWS_ACCESS_KEY_ID';
  state.p.aws['cred.secretAccessKey'] = 'env:AWS_SECRET_ACCESS_KEY';
  for (let i = 0; i < 200; i++) ks.validate(model.toConfig(state)); // warm up
  const call = [];
  for (let i = 0; i < n; i++) {
    const config = model.toConfig(state);
    const t0 = performance.now();
    ks.validate(config);
    call.push(performance.now() - t0);
  }
  // performance.now() is coarsened to 0.1 ms on pages that are not cross-origin
  // isolated, so also time batches of 100 calls and divide.
  const batch = [];
  for (let b = 0; b < Math.max(20, n / 100); b++) {
    const config = model.toConfig(state);
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) ks.validate(config);
    batch.push((performance.now() - t0) / 100);
  }
  const input = document.getElementById('f-aws-mk-region');
  const keystroke = [];
  for (let i = 0; i < n; i++) {
    input.value = i % 2 ? 'us-east-1' : 'us-east-';
    const t0 = performance.now();
    input.dispatchEvent(new Event('input', { bubbles: true }));
    keystroke.push(performance.now() - t0);
  }
  return { call: stats(call), batch: stats(batch), keystroke: stats(keystroke) };
}, runs);
const version = browser.version();
await browser.close();
await server.close();

const ms = (x) => x.toFixed(3);
console.log(`wasm: ${wasm.length} bytes raw, ${gz} bytes gzipped (-9) = ${(gz / 1024).toFixed(1)} KiB; JS glue ${js.length} bytes`);
console.log(`Chromium ${version}, ${runs} runs each`);
console.log(`validate() call:       median ${ms(result.call.median)} ms, p95 ${ms(result.call.p95)} ms`);
console.log(`validate() in batches:  median ${ms(result.batch.median)} ms, p95 ${ms(result.batch.p95)} ms per call`);
console.log(`whole keystroke:       median ${ms(result.keystroke.median)} ms, p95 ${ms(result.keystroke.p95)} ms`);
