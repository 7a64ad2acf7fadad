'use strict';

// Where the native library comes from (lib/native.js resolveLibrary): PRESENCE_LIB, the
// checkout's cargo build, the package's prebuilds; and a clear error, never a build, when
// there is none. A stand-in cargo on PATH records whether anything ran it.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');
const { resolveLibrary, sourceRoot, libraryFileName, PACKAGE_DIR } = require('../lib/native');
const pe = require('..');

const LIB = pe.libraryPath();
const NAME = libraryFileName();
const PLATFORM_DIR = `${process.platform}-${process.arch}`;

function tmpdir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'presence-loader-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A directory that looks like a presence-engine checkout, with the package inside. */
function fakeRepo(dir) {
  fs.mkdirSync(path.join(dir, 'include'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'core'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'bindings', 'node'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'Cargo.toml'), '[package]\nname = "presence"\n');
  fs.writeFileSync(path.join(dir, 'core', 'Cargo.toml'), '[package]\nname = "presence-core"\n');
  fs.writeFileSync(path.join(dir, 'include', 'presence.h'), '');
  return path.join(dir, 'bindings', 'node');
}

/** A directory with a stand-in cargo that logs any run, for PATH. */
function fakeCargo(dir) {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, 'cargo'), `#!/bin/sh\necho "$PWD|$*" >> "${dir}/cargo.log"\n`, { mode: 0o755 });
  return bin;
}

test('the test run loads the checkout build', () => {
  const root = sourceRoot();
  assert.ok(root, 'this package sits in a checkout');
  const r = resolveLibrary({ env: {} });
  assert.deepEqual(r, { path: path.join(root, 'target', 'release', NAME), source: 'source' });
  if (!process.env.PRESENCE_LIB && !process.env.CARGO_TARGET_DIR) assert.equal(LIB, r.path);
});

test('PRESENCE_LIB overrides everything, and must exist', (t) => {
  const dir = tmpdir(t);
  const copy = path.join(dir, 'custom-name.so');
  fs.copyFileSync(LIB, copy);
  assert.deepEqual(resolveLibrary({ env: { PRESENCE_LIB: copy } }), { path: copy, source: 'env' });
  assert.throws(() => resolveLibrary({ env: { PRESENCE_LIB: path.join(dir, 'missing.so') } }), /PRESENCE_LIB=.*missing\.so does not exist/);
  // And the package really loads that file.
  const out = execFileSync(
    process.execPath,
    ['-e', `const p = require(${JSON.stringify(PACKAGE_DIR)}); const e = new p.Engine(); e.track('t', 1); console.log(p.libraryPath(), e.counts('t').connections)`],
    { env: { ...process.env, PRESENCE_LIB: copy }, encoding: 'utf8' }
  );
  assert.equal(out.trim(), `${copy} 1`);
});

test('CARGO_TARGET_DIR is honoured, relative to the checkout', (t) => {
  const dir = tmpdir(t);
  const pkg = fakeRepo(dir);
  fs.mkdirSync(path.join(dir, 'out', 'release'), { recursive: true });
  fs.copyFileSync(LIB, path.join(dir, 'out', 'release', NAME));
  assert.deepEqual(resolveLibrary({ env: { CARGO_TARGET_DIR: 'out' }, pkgDir: pkg }), {
    path: path.join(dir, 'out', 'release', NAME),
    source: 'source',
  });
});

test('an installed package uses its prebuilds; a checkout prefers its own build', (t) => {
  const dir = tmpdir(t);
  const installed = path.join(dir, 'node_modules', 'presence-engine');
  fs.mkdirSync(path.join(installed, 'prebuilds', PLATFORM_DIR), { recursive: true });
  fs.copyFileSync(LIB, path.join(installed, 'prebuilds', PLATFORM_DIR, NAME));
  assert.deepEqual(resolveLibrary({ env: {}, pkgDir: installed }), {
    path: path.join(installed, 'prebuilds', PLATFORM_DIR, NAME),
    source: 'prebuild',
  });

  const pkg = fakeRepo(path.join(dir, 'repo'));
  fs.mkdirSync(path.join(pkg, 'prebuilds', PLATFORM_DIR), { recursive: true });
  fs.copyFileSync(LIB, path.join(pkg, 'prebuilds', PLATFORM_DIR, NAME));
  assert.equal(resolveLibrary({ env: {}, pkgDir: pkg }).source, 'prebuild');
  fs.mkdirSync(path.join(dir, 'repo', 'target', 'release'), { recursive: true });
  fs.copyFileSync(LIB, path.join(dir, 'repo', 'target', 'release', NAME));
  assert.equal(resolveLibrary({ env: {}, pkgDir: pkg }).source, 'source');
});

test('nothing to load outside a checkout is a clear error', (t) => {
  const dir = tmpdir(t);
  const installed = path.join(dir, 'node_modules', 'presence-engine');
  fs.mkdirSync(installed, { recursive: true });
  assert.throws(() => resolveLibrary({ env: {}, pkgDir: installed }), /no native library for .*linux-x64 \(glibc\).*PRESENCE_LIB/);
});

test('a checkout without a build names the command to run, and builds nothing', (t) => {
  const dir = tmpdir(t);
  const pkg = fakeRepo(path.join(dir, 'repo'));
  const env = { PATH: `${fakeCargo(dir)}:${process.env.PATH}`, CARGO: path.join(dir, 'bin', 'cargo') };
  assert.throws(
    () => resolveLibrary({ env, pkgDir: pkg }),
    (err) =>
      err.message.includes(`no ${path.join(dir, 'repo', 'target', 'release', NAME)}`) &&
      err.message.includes('`make lib`') &&
      err.message.includes(path.join(dir, 'repo')) &&
      err.message.includes('`make dist`')
  );
  assert.ok(!fs.existsSync(path.join(dir, 'cargo.log')), 'cargo was not run');
});

test('a library of another ABI version, or an older 0.1 one, is refused at load with a clear message', (t) => {
  const cc = spawnSync('cc', ['--version']);
  if (cc.error) {
    t.skip('no C compiler to build a stand-in library');
    return;
  }
  const dir = tmpdir(t);
  const names = [
    'presence_engine_new', 'presence_engine_free', 'presence_track', 'presence_untrack',
    'presence_untrack_conn', 'presence_update', 'presence_get_counts', 'presence_list',
    'presence_poll_diff', 'presence_buf_free', 'presence_wakeup_fd', 'presence_get_stats',
    'presence_last_error_message', 'presence_status_name',
  ];
  const src = `${names.map((n) => `int ${n}(void) { return 0; }`).join('\n')}\nconst char *presence_version(void) { return "9.9.0"; }\n`;
  fs.writeFileSync(path.join(dir, 'fake.c'), src);
  execFileSync('cc', ['-shared', '-fPIC', '-o', path.join(dir, 'libfake.so'), path.join(dir, 'fake.c')]);
  const r = spawnSync(process.execPath, ['-e', `new (require(${JSON.stringify(PACKAGE_DIR)}).Engine)()`], {
    env: { ...process.env, PRESENCE_LIB: path.join(dir, 'libfake.so') },
    encoding: 'utf8',
  });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /is libpresence 9\.9\.0, but this package speaks the 0\.1\.x C ABI/);

  // A 0.1 library from before the cluster calls: the same version, fewer functions.
  const old = `${names.map((n) => `int ${n}(void) { return 0; }`).join('\n')}\nconst char *presence_version(void) { return "0.1.0"; }\n`;
  fs.writeFileSync(path.join(dir, 'old.c'), old);
  execFileSync('cc', ['-shared', '-fPIC', '-o', path.join(dir, 'libold.so'), path.join(dir, 'old.c')]);
  const o = spawnSync(process.execPath, ['-e', `new (require(${JSON.stringify(PACKAGE_DIR)}).Engine)()`], {
    env: { ...process.env, PRESENCE_LIB: path.join(dir, 'libold.so') },
    encoding: 'utf8',
  });
  assert.notEqual(o.status, 0);
  assert.match(o.stderr, /libold\.so \(libpresence 0\.1\.0\) has no presence_pending_topics: it was built before/);
});
