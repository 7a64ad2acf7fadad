// Compiled by test/types.test.js with tsc --noEmit: the CommonJS side (require).
import pe = require('presence-engine');

const engine = new pe.Engine({ format: 'counts' });
engine.track('room', 1, 'alice');
const c: pe.Counts = engine.counts('room');
try {
  engine.untrack('room', 2);
} catch (err) {
  if (err instanceof pe.NotTrackedError) {
    const code: string = err.code;
    void code;
  }
}
engine.close();
// @ts-expect-error: the CommonJS entry has no default export
void pe.default;
void c;
