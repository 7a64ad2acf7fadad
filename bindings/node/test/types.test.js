'use strict';

// index.d.ts matches the implementation: tsc compiles test/types/usage.{mts,cts}, which
// use every declared name (and a few mistakes that must not compile), and the names
// declared are exactly the names exported at run time.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const pe = require('..');

const ROOT = path.join(__dirname, '..');

test('tsc --noEmit accepts the usage files against index.d.ts / index.d.mts', () => {
  const tsc = require.resolve('typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', path.join(__dirname, 'types', 'tsconfig.json')], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});

test('index.d.ts declares exactly the runtime exports', () => {
  const dts = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8');
  const declared = [...dts.matchAll(/^export (?:declare )?(?:class|function|const) (\w+)/gm)].map((m) => m[1]).sort();
  assert.deepEqual(declared, Object.keys(pe).sort());
});

test('the Engine methods declared are the ones implemented', () => {
  const dts = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8');
  const body = dts.slice(dts.indexOf('export class Engine {'), dts.indexOf('\n}', dts.indexOf('export class Engine {')));
  // An overloaded method is declared once per signature.
  const declared = [...new Set([...body.matchAll(/^ {2}(?:readonly )?(\w+)[(:?]/gm)].map((m) => m[1]))].filter((n) => n !== 'constructor').sort();
  const proto = Object.getOwnPropertyNames(pe.Engine.prototype).filter((n) => n !== 'constructor').sort();
  assert.deepEqual(declared, proto);
  assert.equal(typeof pe.Engine.prototype[Symbol.dispose], 'function');
  assert.ok(body.includes('[Symbol.dispose](): void;'));
});

test('the Stats and ClusterStats interfaces declare exactly the fields of stats() and clusterStats()', () => {
  const dts = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8');
  const fields = (name) => {
    const start = dts.indexOf(`export interface ${name} {`);
    assert.ok(start >= 0, name);
    const body = dts.slice(start, dts.indexOf('\n}', start));
    return [...body.matchAll(/^ {2}(\w+)\??:/gm)].map((m) => m[1]).sort();
  };
  const e = new pe.Engine({ cluster: { node: 'a', secret: 'a shared secret of the test cluster' } });
  try {
    assert.deepEqual(fields('Stats'), Object.keys(e.stats()).sort());
    assert.deepEqual(fields('ClusterStats'), Object.keys(e.clusterStats()).sort());
  } finally {
    e.close();
  }
});
