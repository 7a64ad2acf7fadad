'use strict';

// The package as users get it: `npm pack` (whose prepack builds the library with cargo
// and puts it in prebuilds/), installed into a temporary project outside the source
// tree, then required (CommonJS) and imported (ES module) from there. Also
// `npm install <checkout>/bindings/node`, which links the package into the project.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { PACKAGE_DIR, libraryFileName } = require('../lib/native');

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const PLATFORM_DIR = `${process.platform}-${process.arch}`;

/** The environment of the consumer: no override, so the package must find its library. */
function cleanEnv() {
  const env = { ...process.env };
  delete env.PRESENCE_LIB;
  delete env.NODE_PATH;
  return env;
}

function npm(args, cwd) {
  return execFileSync(NPM, [...args, '--no-audit', '--no-fund'], {
    cwd,
    env: cleanEnv(),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 240_000,
  });
}

const CJS_CHECK = `
const pe = require('presence-engine');
const e = new pe.Engine({ format: 'phoenix' });
e.track('room:1', 1, 'alice', { device: 'phone' });
e.track('room:1', 2n);
const batch = e.pollDiff();
let notTracked = '';
try { e.untrack('room:1', 3); } catch (err) { notTracked = err instanceof pe.NotTrackedError ? err.code : 'wrong class'; }
console.log(JSON.stringify({
  lib: pe.libraryPath(),
  version: pe.version(),
  counts: e.counts('room:1'),
  keys: Object.keys(batch[0].payload.joins).sort(),
  notTracked,
}));
e.close();
`;

const ESM_CHECK = `
import { Engine, PresenceError, libraryPath } from 'presence-engine';
import pe from 'presence-engine';
const e = new Engine();
e.track('room:1', 1, 'alice');
e.track('room:1', 2);
const [d] = e.pollDiff();
let closed = '';
e.close();
try { e.counts('room:1'); } catch (err) { closed = err instanceof PresenceError ? err.name : 'wrong class'; }
console.log(JSON.stringify({ lib: libraryPath(), same: pe.Engine === Engine, counts: d.counts, closed }));
`;

function runChecks(project) {
  fs.writeFileSync(path.join(project, 'check.cjs'), CJS_CHECK);
  fs.writeFileSync(path.join(project, 'check.mjs'), ESM_CHECK);
  const run = (file) =>
    JSON.parse(execFileSync(process.execPath, [file], { cwd: project, env: cleanEnv(), encoding: 'utf8' }).trim());
  return { cjs: run('check.cjs'), esm: run('check.mjs') };
}

test('npm pack: the tarball installs into a temp project and works from there (CJS and ESM)', { timeout: 300_000 }, (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'presence-pack-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));

  const out = npm(['pack', '--json', '--pack-destination', dir], PACKAGE_DIR);
  const [info] = JSON.parse(out.slice(out.indexOf('[')));
  const files = info.files.map((f) => f.path).sort();
  const lib = `prebuilds/${PLATFORM_DIR}/${libraryFileName()}`;
  for (const f of ['index.js', 'index.mjs', 'index.d.ts', 'lib/native.js', 'lib/errors.js', 'package.json', 'README.md', lib]) {
    assert.ok(files.includes(f), `${f} is in the tarball (${files.join(', ')})`);
  }
  assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('node_modules/') || f.startsWith('scripts/')), files.join(', '));
  // postpack took the copy away again: the checkout keeps loading its live build.
  assert.ok(!fs.existsSync(path.join(PACKAGE_DIR, 'prebuilds')), 'no prebuilds/ left in the checkout');

  const project = path.join(dir, 'consumer');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  npm(['install', path.join(dir, info.filename)], project);
  const installed = fs.realpathSync(path.join(project, 'node_modules', 'presence-engine'));
  assert.ok(!installed.startsWith(path.resolve(PACKAGE_DIR, '..', '..')), 'installed outside the source tree');

  const { cjs, esm } = runChecks(project);
  const expectedLib = path.join(installed, 'prebuilds', PLATFORM_DIR, libraryFileName());
  assert.deepEqual(cjs, {
    lib: expectedLib,
    version: require('../package.json').version,
    counts: { viewers: 1, users: 1, connections: 2 },
    keys: ['alice', 'viewers'],
    notTracked: 'PRESENCE_STATUS_NOT_TRACKED',
  });
  assert.deepEqual(esm, {
    lib: expectedLib,
    same: true,
    counts: { viewers: 1, users: 1, connections: 2 },
    closed: 'EngineClosedError',
  });
});

test('npm install <checkout>/bindings/node links the package, which loads the checkout build', { timeout: 120_000 }, (t) => {
  // npm installs a linked folder's own dependencies only when the folder is inside the
  // installing project; this one is outside, so koffi comes from bindings/node/node_modules
  // (present: this suite runs after npm ci there).
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'presence-link-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'linker', private: true }));
  npm(['install', PACKAGE_DIR], dir);
  assert.equal(fs.realpathSync(path.join(dir, 'node_modules', 'presence-engine')), fs.realpathSync(PACKAGE_DIR));
  const { cjs, esm } = runChecks(dir);
  const built = process.env.CARGO_TARGET_DIR
    ? path.resolve(PACKAGE_DIR, '..', '..', process.env.CARGO_TARGET_DIR, 'release', libraryFileName())
    : path.resolve(PACKAGE_DIR, '..', '..', 'target', 'release', libraryFileName());
  assert.equal(cjs.lib, built);
  assert.equal(esm.lib, built);
  assert.deepEqual(cjs.counts, { viewers: 1, users: 1, connections: 2 });
});
