// A snapshot taken with allocation tracking (run with `node --track-heap-objects`), for the
// allocation-site tests: remember() keeps every Order it makes, churn() keeps nothing.
//   node --track-heap-objects tracked.js OUT.heapsnapshot
const v8 = require('node:v8');

const kept = [];

class Order {
  constructor(id) {
    this.id = id;
    this.items = new Array(4).fill(id);
  }
}

function remember(id) {
  kept.push(new Order(id));
}

function churn(id) {
  return { scratch: id };
}

for (let i = 0; i < 3000; i++) {
  remember(i);
  churn(i);
}
v8.writeHeapSnapshot(process.argv[2]);
