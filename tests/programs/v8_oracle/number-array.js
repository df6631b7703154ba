// Leaks numbers into an ever-growing array (a metrics buffer nobody drains): the only object
// allocated between baseline and target is the array's new backing store, whose size DevTools
// folds into the (older) array. Writes baseline, target and final snapshots to process.argv[2..4]:
//   node number-array.js baseline.heapsnapshot target.heapsnapshot final.heapsnapshot
'use strict';
const v8 = require('v8');

globalThis.samples = [];
for (let i = 0; i < 10; i++) globalThis.samples.push(i);
const [baseline, target, final] = process.argv.slice(2, 5);
v8.writeHeapSnapshot(baseline);
for (let i = 0; i < 100000; i++) globalThis.samples.push(i & 1023);
v8.writeHeapSnapshot(target);
v8.writeHeapSnapshot(final);
