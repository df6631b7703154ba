// Two leaks the three-way diff must keep apart and one it must keep together: a module-level
// dictionary keyed by random UUIDs (one group, not one per key) and two closure variables whose
// names differ only in a digit (`cacheV1`, `cacheV2`: two groups, each named). Writes baseline,
// target and final snapshots to process.argv[2..4].
'use strict';
const v8 = require('v8');
const { randomUUID } = require('crypto');

class Session { constructor(n) { this.n = n; this.data = new Array(16).fill(n); } }
class UserRecord { constructor(n) { this.n = n; this.tags = ['a', 'b']; } }
class TokenRecord { constructor(n) { this.n = n; } }

const sessions = {};
const cacheV1 = new Map();
const cacheV2 = new Map();
globalThis.keep = () => [sessions, cacheV1, cacheV2];

const [baseline, target, final] = process.argv.slice(2, 5);
v8.writeHeapSnapshot(baseline);
for (let i = 0; i < 300; i++) {
  sessions[randomUUID()] = new Session(i);
  cacheV1.set('u' + i, new UserRecord(i));
  cacheV2.set('t' + i, new TokenRecord(i));
}
v8.writeHeapSnapshot(target);
v8.writeHeapSnapshot(final);
