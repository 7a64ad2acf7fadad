'use strict';

// Finds libpresence, loads it with koffi and declares the C functions of
// include/presence.h. Nothing here knows about the JS API; the rest of lib/ builds on it.
//
// Where the library comes from, first match wins:
//  1. PRESENCE_LIB: an explicit path (an error if the file is missing).
//  2. A source checkout: when this package sits at bindings/node of the presence-engine
//     repository (also through `npm install ./bindings/node`, which links it), the
//     release build in $CARGO_TARGET_DIR or <repo>/target. The live build wins over any
//     copy so that a Rust change is picked up by `cargo build` alone.
//  3. prebuilds/<platform>-<arch>/ inside the package: what the npm tarball ships
//     (`make dist`, or `npm pack`, whose prepack copies the release build there).
// Nothing is ever built at load: a checkout without a build gets an error that names the
// command, because a silent cargo build of minutes looks like a hang. npm 11 skips the
// install scripts of dependencies unless the user approves them, so nothing here relies
// on an install script either.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/** The major.minor of the C ABI this binding was written against (include/presence.h). */
const ABI_VERSION = '0.1';

const PACKAGE_DIR = path.resolve(__dirname, '..');

function libraryFileName(platform = process.platform) {
  if (platform === 'win32') return 'presence.dll';
  if (platform === 'darwin') return 'libpresence.dylib';
  return 'libpresence.so';
}

function prebuildDir(pkgDir = PACKAGE_DIR) {
  return path.join(pkgDir, 'prebuilds', `${process.platform}-${process.arch}`);
}

/** The repository root when this package is bindings/node of a presence-engine checkout. */
function sourceRoot(pkgDir = PACKAGE_DIR) {
  const root = path.resolve(pkgDir, '..', '..');
  const isRepo =
    fs.existsSync(path.join(root, 'Cargo.toml')) &&
    fs.existsSync(path.join(root, 'include', 'presence.h')) &&
    fs.existsSync(path.join(root, 'core', 'Cargo.toml'));
  return isRepo ? root : null;
}

/** The release library path of a checkout, honouring CARGO_TARGET_DIR. */
function sourceBuildPath(root, env = process.env) {
  const targetDir = env.CARGO_TARGET_DIR
    ? path.resolve(root, env.CARGO_TARGET_DIR)
    : path.join(root, 'target');
  return path.join(targetDir, 'release', libraryFileName());
}

/**
 * Where the library is, and how it was found: {path, source}. Throws with the places
 * looked at, and what to do, when there is nothing to load.
 */
function resolveLibrary({ env = process.env, pkgDir = PACKAGE_DIR } = {}) {
  if (env.PRESENCE_LIB) {
    const p = path.resolve(env.PRESENCE_LIB);
    if (!fs.existsSync(p)) throw new Error(`presence-engine: PRESENCE_LIB=${env.PRESENCE_LIB} does not exist`);
    return { path: p, source: 'env' };
  }
  const root = sourceRoot(pkgDir);
  const built = root && sourceBuildPath(root, env);
  if (built && fs.existsSync(built)) return { path: built, source: 'source' };
  const prebuilt = path.join(prebuildDir(pkgDir), libraryFileName());
  if (fs.existsSync(prebuilt)) return { path: prebuilt, source: 'prebuild' };
  if (root) {
    throw new Error(
      `presence-engine: the native library is not built yet (no ${built}). ` +
        `Run \`make lib\` (or \`cargo build --release --lib\`) in ${root}, ` +
        'or install the npm tarball of `make dist`, which carries it prebuilt.'
    );
  }
  throw new Error(
    `presence-engine: no native library for ${process.platform}-${process.arch} (looked at ${prebuilt}). ` +
      'The npm tarball carries one for linux-x64 (glibc) only; elsewhere build it with ' +
      '`cargo build --release --lib` in the presence-engine repository and set PRESENCE_LIB to the file.'
  );
}

let loaded = null;
let typesDeclared = false;

/** Loads the library once and returns the declared functions. */
function native() {
  if (loaded) return loaded;
  let koffi;
  try {
    koffi = require('koffi');
  } catch (err) {
    // npm links a directory dependency that lies outside the installing project without
    // installing the linked package's own dependencies.
    throw new Error(
      `presence-engine: cannot load koffi from ${PACKAGE_DIR} (${err.message.split('\n')[0]}). ` +
        'Run `npm install` in that directory, install from inside the repository (`npm install ./bindings/node` ' +
        'at its root), or install the npm tarball of `make dist`.'
    );
  }
  const where = resolveLibrary();
  const lib = koffi.load(where.path);

  // The version first: a library of another ABI must be refused before any of its
  // functions is declared with a signature it may not have.
  const version = lib.func('const char *presence_version(void)');
  const v = version();
  if (v.split('.').slice(0, 2).join('.') !== ABI_VERSION) {
    throw new Error(`presence-engine: ${where.path} is libpresence ${v}, but this package speaks the ${ABI_VERSION}.x C ABI`);
  }

  // Out-parameters are passed as typed arrays over scratch memory rather than as
  // koffi struct objects: the C structs are plain u64/size_t fields in native byte
  // order, which typed arrays read without allocating an object per call.
  // koffi's type names are global: declared once, even if a load is retried.
  if (!typesDeclared) {
    koffi.opaque('presence_engine');
    // What presence_poll_ready_into renders into (lib/batch.js declares the functions).
    koffi.opaque('presence_ready_batch');
    // The cluster calls hand out messages through this callback, synchronously, on the
    // calling thread (lib/scratch.js passes a JS function: a koffi transient callback).
    koffi.proto('void presence_message_cb(void *userdata, const uint8_t *data, size_t len)');
    typesDeclared = true;
  }
  // The 0.1 ABI gained functions without a version change (the cluster calls,
  // presence_pending_topics): a 0.1 library built before them lacks them.
  const fn = (decl) => {
    try {
      return lib.func(decl);
    } catch (err) {
      const name = /(presence_\w+)\(/.exec(decl)[1];
      throw new Error(
        `presence-engine: ${where.path} (libpresence ${v}) has no ${name}: it was built before this package's ` +
          `functions were added; rebuild it (cargo build --release --lib) (${err.message})`
      );
    }
  };
  const n = {
    koffi,
    path: where.path,
    source: where.source,
    engine_new: fn('int presence_engine_new(const char *config_json, _Out_ presence_engine **out)'),
    engine_free: fn('void presence_engine_free(presence_engine *engine)'),
    track: fn('int presence_track(const presence_engine *engine, const char *topic, uint64_t conn, const char *key, const char *meta)'),
    untrack: fn('int presence_untrack(const presence_engine *engine, const char *topic, uint64_t conn)'),
    untrack_conn: fn('int presence_untrack_conn(const presence_engine *engine, uint64_t conn, void *removed)'),
    update: fn('int presence_update(const presence_engine *engine, const char *topic, uint64_t conn, const char *meta)'),
    get_counts: fn('int presence_get_counts(const presence_engine *engine, const char *topic, void *out)'),
    list: fn('int presence_list(const presence_engine *engine, const char *topic, void *out, void *seq)'),
    poll_diff: fn('int presence_poll_diff(const presence_engine *engine, void *out)'),
    buf_free: fn('void presence_buf_free(void *buf)'),
    wakeup_fd: fn('int presence_wakeup_fd(const presence_engine *engine)'),
    pending_topics: fn('int presence_pending_topics(const presence_engine *engine, void *out)'),
    get_stats: fn('int presence_get_stats(const presence_engine *engine, void *out)'),
    cluster_tick: fn('int presence_cluster_tick(const presence_engine *engine, presence_message_cb *callback, void *userdata)'),
    cluster_ingest: fn('int presence_cluster_ingest(const presence_engine *engine, const void *data, size_t len)'),
    cluster_leave: fn('int presence_cluster_leave(const presence_engine *engine, presence_message_cb *callback, void *userdata)'),
    cluster_resync: fn('int presence_cluster_resync(const presence_engine *engine, presence_message_cb *callback, void *userdata)'),
    cluster_get_stats: fn('int presence_cluster_get_stats(const presence_engine *engine, void *out)'),
    redis_start: fn('int presence_redis_start(const presence_engine *engine, const char *url, const char *channel)'),
    redis_stop: fn('int presence_redis_stop(const presence_engine *engine)'),
    last_error_message: fn('size_t presence_last_error_message(void *buf, size_t cap)'),
    status_name: fn('const char *presence_status_name(uint32_t status)'),
    // Declared last: a library older than it lacks the cluster calls too, which are named first.
    config_defaults: fn('int presence_config_defaults(void *out)'),
    version,
    pointerSize: koffi.sizeof('void *'),
  };
  if (koffi.sizeof('size_t') !== n.pointerSize) {
    throw new Error('presence-engine: size_t and pointers differ in size on this platform; unsupported');
  }
  loaded = n;
  return n;
}

module.exports = {
  ABI_VERSION,
  native,
  resolveLibrary,
  sourceRoot,
  sourceBuildPath,
  prebuildDir,
  libraryFileName,
  PACKAGE_DIR,
  LITTLE_ENDIAN: os.endianness() === 'LE',
};
