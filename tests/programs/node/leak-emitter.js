// Leaks through an EventEmitter listener closure: every request subscribes to the bus's
// 'config-changed' event and never unsubscribes, so each RequestContext stays reachable from the
// emitter. Writes baseline, target and final snapshots to process.argv[2..4].
'use strict';
const EventEmitter = require('events');
const v8 = require('v8');

const bus = new EventEmitter();
bus.setMaxListeners(0);
globalThis.bus = bus;

class RequestContext {
  constructor(id) {
    this.id = id;
    this.headers = { 'x-request-id': String(id) };
    this.body = new Array(128).fill(id);
  }
}

function handleRequest(id) {
  const ctx = new RequestContext(id);
  bus.on('config-changed', () => ctx.id); // the leak: never removed
  const temporary = new Array(64).fill(id); // garbage after the request
  return temporary.length;
}

let scratch = [];
function churn(n) {
  // Short-lived objects that are gone by the final snapshot.
  scratch = Array.from({ length: n }, (_, i) => ({ tmp: i, text: 'tmp' + i }));
}

for (let i = 0; i < 20; i++) handleRequest(i);
const [baseline, target, final] = process.argv.slice(2, 5);
v8.writeHeapSnapshot(baseline);
for (let i = 20; i < 2020; i++) handleRequest(i);
churn(3000);
v8.writeHeapSnapshot(target);
scratch = [];
for (let i = 0; i < 200; i++) churn(100);
scratch = [];
v8.writeHeapSnapshot(final);
