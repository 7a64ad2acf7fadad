// Type declarations of the ES module entry point (index.mjs): the same names as the
// CommonJS entry point, plus a default export holding them all.
export * from './index.js';
import * as presence from './index.js';
export default presence;
