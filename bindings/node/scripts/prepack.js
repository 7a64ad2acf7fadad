'use strict';

// `npm pack` / `npm publish`: build the release library with cargo and put a copy, with
// its debug info stripped, in prebuilds/<platform>-<arch>/, which the tarball ships and
// the loader (lib/native.js) uses when the package is installed outside the repository.
// postpack.js removes the copy again, so a checkout never loads a stale one.

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { sourceRoot, sourceBuildPath, prebuildDir, libraryFileName } = require('../lib/native');

const root = sourceRoot();
const dest = path.join(prebuildDir(), libraryFileName());

if (root === null) {
  // Packing an already packed copy: it must carry its library.
  if (!fs.existsSync(dest)) {
    console.error(`prepack: not in the presence-engine repository and ${dest} is missing`);
    process.exit(1);
  }
  process.exit(0);
}

const cargo = process.env.CARGO || 'cargo';
const build = spawnSync(cargo, ['build', '--release', '--lib'], { cwd: root, stdio: ['ignore', 2, 2] });
if (build.error || build.status !== 0) {
  console.error(`prepack: ${cargo} build --release --lib failed`, build.error ? build.error.message : `(exit ${build.status})`);
  process.exit(1);
}

const src = sourceBuildPath(root);
fs.mkdirSync(path.dirname(dest), { recursive: true });
// Write beside the destination, then rename: a reader never sees a half-written file.
const tmp = `${dest}.${process.pid}.tmp`;
const strip = spawnSync('objcopy', ['--strip-debug', src, tmp], { stdio: ['ignore', 2, 2] });
if (strip.error || strip.status !== 0) {
  // No binutils: ship the library as built (larger, same code).
  fs.copyFileSync(src, tmp);
}
fs.chmodSync(tmp, 0o755);
fs.renameSync(tmp, dest);
console.error(`prepack: ${path.relative(process.cwd(), dest)} (${fs.statSync(dest).size} bytes) from ${src}`);
