// An order queue that starts leaking plain object literals only after the baseline: the leaked
// shape {orderId, lines, total} does not exist in the first snapshot, so the Comparison view
// must name it by the compared snapshot's interface definitions (DevTools classifies the base
// snapshot's objects with the compared one's), not call the new objects `Object`.
// Writes baseline, target and final snapshots to process.argv[2..4]:
//   node late-shape.js baseline.heapsnapshot target.heapsnapshot final.heapsnapshot [ORDERS]
'use strict';
const v8 = require('v8');

const [baseline, target, final, orders] = process.argv.slice(2, 6);
const count = Number(orders || 1000);
const pending = [];
globalThis.pendingOrders = pending;

function take(from, to) {
  for (let i = from; i < to; i++) pending.push({ orderId: i, lines: [i, i + 1], total: i * 2.5 });
}

v8.writeHeapSnapshot(baseline);
take(0, count);
v8.writeHeapSnapshot(target);
take(count, 2 * count);
v8.writeHeapSnapshot(final);
