// A singly linked list of 20000 nodes held by a global, each node with an array of 64 numbers, so
// that the list is most of the heap: the global's accumulation point lies at the far end of the
// list, thousands of references down. Writes a heap snapshot to the path given as the first
// argument.
const v8 = require('v8');

class ChainNode {
  constructor(next, index) {
    this.next = next;
    this.payload = new Array(64).fill(index);
  }
}

let head = null;
for (let i = 0; i < 20000; i++) {
  head = new ChainNode(head, i);
}
globalThis.chainHead = head;
v8.writeHeapSnapshot(process.argv[2]);
