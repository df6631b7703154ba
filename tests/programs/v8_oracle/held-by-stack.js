// One object held twice: by a global property and by a local variable of the function that is
// running when the snapshot is written (a `(Stack roots)` slot). Writes the snapshot to
// process.argv[2]:   node held-by-stack.js out.heapsnapshot
'use strict';
const v8 = require('v8');

class HeldTwice {
  constructor() {
    this.payload = new Array(100).fill(7);
  }
}

function run(file) {
  const local = new HeldTwice();
  globalThis.alsoGlobal = local;
  v8.writeHeapSnapshot(file);
  return local;
}

run(process.argv[2]);
