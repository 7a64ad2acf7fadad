'use strict';

// After `npm pack`: in the repository, remove the prebuilds/ copy made by prepack.js so
// that the checkout keeps loading the live cargo build. Outside the repository the
// prebuilds are the package's own and stay.

const fs = require('node:fs');
const path = require('node:path');
const { sourceRoot, PACKAGE_DIR } = require('../lib/native');

if (sourceRoot() !== null) {
  fs.rmSync(path.join(PACKAGE_DIR, 'prebuilds'), { recursive: true, force: true });
}
