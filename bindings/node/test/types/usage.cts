// Compiled by test/types.test.js with tsc --noEmit: the CommonJS side (require).
import pe = require('presence-engine');

const engine = new pe.Engine({ format: 'counts' });
engine.track('room', 1, 'alice');
const polling: pe.TrackOptions = { ttlMs: 30_000 };
engine.track('inbox', 2, 'alice', null, polling);
const renewed: number = engine.touch(2);
// @ts-expect-error: the time to live is ttlMs, in milliseconds
engine.track('inbox', 3, null, null, { ttl: 30 });
void renewed;
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
