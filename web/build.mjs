// Builds the browser guide into web/dist: keyshift-wasm for wasm32 (release), its
// JavaScript bindings (wasm-bindgen --target web, into web/pkg), and the static files of
// web/src. `keyshift guide` embeds web/dist, so build this before the native binary.
//
//   node web/build.mjs            (npm run build)
//   node web/build.mjs --skip-wasm   (only web/src changed)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const web = join(root, 'web');
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });

const locked = process.argv.includes('--locked') ? ['--locked'] : [];
// Cargo's target directory: CARGO_TARGET_DIR when set (relative to the workspace), so a
// build kept apart from the workspace's target/ finds its own wasm.
const targetDir = process.env.CARGO_TARGET_DIR ? resolve(root, process.env.CARGO_TARGET_DIR) : join(root, 'target');
// --skip-wasm: only sync web/src (and the web/pkg already built) into web/dist, for
// work on the page alone.
if (!process.argv.includes('--skip-wasm') || !existsSync(join(web, 'pkg/keyshift_wasm_bg.wasm'))) {
  run('cargo', ['build', ...locked, '--release', '--target', 'wasm32-unknown-unknown', '-p', 'keyshift-wasm']);
  rmSync(join(web, 'pkg'), { recursive: true, force: true });
  run('wasm-bindgen', [
    '--target', 'web', '--no-typescript', '--remove-name-section', '--remove-producers-section', '--out-dir', join(web, 'pkg'),
    join(targetDir, 'wasm32-unknown-unknown/release/keyshift_wasm.wasm'),
  ]);
}

const dist = join(web, 'dist');
// Files under a directory, as paths relative to it.
const list = (dir, rel = '') => {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    const r = rel ? `${rel}/${name}` : name;
    if (statSync(p).isDirectory()) out.push(...list(p, r));
    else out.push(r);
  }
  return out;
};
// Sync web/src and web/pkg into web/dist, writing only files whose bytes changed: the
// native build embeds web/dist (native/src/guide.rs), and an untouched file keeps cargo
// from recompiling it.
const wanted = new Map();
for (const f of list(join(web, 'src'))) wanted.set(f, join(web, 'src', f));
for (const f of list(join(web, 'pkg'))) wanted.set(`pkg/${f}`, join(web, 'pkg', f));
for (const f of list(dist)) if (!wanted.has(f)) rmSync(join(dist, f));
let written = 0;
for (const [f, from] of wanted) {
  const to = join(dist, f);
  const bytes = readFileSync(from);
  if (existsSync(to) && readFileSync(to).equals(bytes)) continue;
  mkdirSync(dirname(to), { recursive: true });
  writeFileSync(to, bytes);
  written += 1;
}
const files = [...wanted.keys()];
const wasm = readFileSync(join(dist, 'pkg/keyshift_wasm_bg.wasm'));
console.error(`web/dist: ${files.length} files (${written} updated); wasm ${wasm.length} bytes, ${gzipSync(wasm, { level: 9 }).length} gzipped`);
