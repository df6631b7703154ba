// Builds a heap with many kinds of V8 objects and writes one snapshot to process.argv[2].
// Used for leaksift's DevTools-equality fixture: classes with the same name at two source
// locations, plain objects sharing shapes (DevTools names them `{x, y}`), closures, Maps, Sets,
// WeakMap ephemerons, WeakRefs, typed arrays, cons/sliced strings, symbols and bigints.
'use strict';
const v8 = require('v8');

class Point {
  constructor(x, y) { this.x = x; this.y = y; }
}
function makeItemClass(tag) {
  return class Item { constructor(i) { this.tag = tag; this.i = i; } };
}
const ItemA = makeItemClass('a');
const ItemB = (() => class Item { constructor(i) { this.other = i; } })();

const keep = {
  points: Array.from({ length: 500 }, (_, i) => new Point(i, i * 2)),
  itemsA: Array.from({ length: 120 }, (_, i) => new ItemA(i)),
  itemsB: Array.from({ length: 80 }, (_, i) => new ItemB(i)),
  plain: Array.from({ length: 300 }, (_, i) => ({ left: i, right: -i })),
  plain2: Array.from({ length: 200 }, (_, i) => ({ id: i, name: 'n' + i, 'odd,key': true })),
  map: new Map(Array.from({ length: 200 }, (_, i) => ['key' + i, { value: i }])),
  set: new Set(Array.from({ length: 100 }, (_, i) => i * 3)),
  closures: Array.from({ length: 50 }, (_, i) => () => i + 1),
  cons: Array.from({ length: 40 }, (_, i) => 'prefix-'.repeat(3) + i + '-suffix'.repeat(2)),
  sliced: Array.from({ length: 40 }, (_, i) => ('x'.repeat(40) + i).slice(5, 30)),
  dup: Array.from({ length: 30 }, () => ['dup', 'licated', 'string'].join('-')),
  typed: Array.from({ length: 10 }, () => new Float64Array(256)),
  symbols: Array.from({ length: 10 }, (_, i) => Symbol('s' + i)),
  bigints: Array.from({ length: 10 }, (_, i) => BigInt(i) ** 70n),
  lone: '\ud800 lone surrogate \udfff',
};
const weakKeys = Array.from({ length: 20 }, (_, i) => ({ weakKey: i }));
const weakMap = new WeakMap(weakKeys.map((k) => [k, { payload: new Array(20).fill(k.weakKey) }]));
const weakRefs = Array.from({ length: 5 }, () => new WeakRef({ onlyWeak: true }));
globalThis.keep = keep;
globalThis.weakState = { weakKeys, weakMap, weakRefs };

v8.writeHeapSnapshot(process.argv[2]);
