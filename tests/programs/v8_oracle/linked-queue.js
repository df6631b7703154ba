// Leaks through a doubly linked list: a job queue appends a PendingJob per request and nothing
// ever dequeues it (the shape of Node's own timer lists and of hand-written LRU caches). Each
// entry is held by its neighbours, so every entry is a top-level leaked object at its own depth.
// Writes baseline, target and final snapshots to process.argv[2..4]:
//   node linked-queue.js baseline.heapsnapshot target.heapsnapshot final.heapsnapshot [JOBS]
'use strict';
const v8 = require('v8');

class PendingJob {
  constructor(id) {
    this.id = id;
    this.prev = null;
    this.next = null;
    this.payload = new Array(16).fill(id);
  }
}

class JobQueue {
  constructor() {
    this.head = null;
    this.tail = null;
  }
  push(job) {
    if (this.tail === null) {
      this.head = job;
    } else {
      this.tail.next = job;
      job.prev = this.tail;
    }
    this.tail = job;
  }
}

const queue = new JobQueue();
globalThis.jobQueue = queue;

let scratch = [];
function churn(n) { scratch = Array.from({ length: n }, (_, i) => ({ tmp: i })); }

const [baseline, target, final, jobs] = process.argv.slice(2, 6);
const count = Number(jobs || 2000);
for (let i = 0; i < 10; i++) queue.push(new PendingJob(i));
v8.writeHeapSnapshot(baseline);
for (let i = 10; i < 10 + count; i++) queue.push(new PendingJob(i));
churn(1000);
v8.writeHeapSnapshot(target);
scratch = [];
v8.writeHeapSnapshot(final);
