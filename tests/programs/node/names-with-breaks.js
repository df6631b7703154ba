// A property name holding a newline and a tab on the top suspect's path: it holds an array of
// 20000 objects, most of the heap. Writes a heap snapshot to the path given as the first argument.
const v8 = require('v8');

class Payload {
  constructor() {
    this.data = new Array(64).fill(1);
  }
}
globalThis.holder = {
  ['evil\nname\tTAB']: Array.from({ length: 20000 }, () => new Payload()),
};
v8.writeHeapSnapshot(process.argv[2]);
