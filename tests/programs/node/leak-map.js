// Leaks through an ever-growing Map: a session store adds a Session per request and never
// evicts. Writes baseline, target and final snapshots to process.argv[2..4].
'use strict';
const v8 = require('v8');

class Session {
  constructor(id) {
    this.id = id;
    this.user = { name: 'user' + id, roles: ['reader'] };
    this.buffer = new Array(96).fill(id);
  }
}

class SessionStore {
  constructor() { this.sessions = new Map(); }
  open(id) { this.sessions.set('s' + id, new Session(id)); }
}

const sessionStore = new SessionStore();
globalThis.sessionStore = sessionStore;

let scratch = [];
function churn(n) { scratch = Array.from({ length: n }, (_, i) => ({ tmp: i })); }

for (let i = 0; i < 20; i++) sessionStore.open(i);
const [baseline, target, final] = process.argv.slice(2, 5);
v8.writeHeapSnapshot(baseline);
for (let i = 20; i < 2020; i++) sessionStore.open(i);
churn(3000);
v8.writeHeapSnapshot(target);
scratch = [];
churn(10);
scratch = [];
v8.writeHeapSnapshot(final);
