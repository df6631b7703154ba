// Test HTTP server for `leaksift check` and `watch` on V8 (node:http only, 127.0.0.1 only).
//
//   node server.js --mode keep|free --port-file FILE [--kib N]
//
// Every request builds a session record of about N KiB (default 32) on the V8 heap: a string and
// an array of small objects. `--mode keep` stores each record in a module-level Map forever (the
// classic session-store leak); `--mode free` drops it after answering, so it is garbage for the
// next scavenge. When node runs with --expose-gc (else both answer 404), GET /gc runs a full
// collection (for `check --before-sample`) and GET /heap runs one and answers the bytes still
// used, V8 heap plus external (Buffers), as a number (for `check --sample-cmd`). The chosen port
// is written to FILE (atomically) once the server listens.
'use strict';
const fs = require('node:fs');
const http = require('node:http');

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at > 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const mode = option('--mode');
const portFile = option('--port-file');
const kib = Number(option('--kib', '32'));
if (!['keep', 'free'].includes(mode) || !portFile || !(kib > 0)) {
  console.error('usage: node server.js --mode keep|free --port-file FILE [--kib N]');
  process.exit(2);
}

const sessions = new Map();
let served = 0;

function sessionRecord(id) {
  // Half of the size in a string (one byte per character), half in objects of ~64 bytes.
  const text = ('session ' + id + ' ').repeat(Math.ceil((kib * 512) / 16)).slice(0, kib * 512);
  const events = Array.from({ length: Math.ceil((kib * 512) / 64) }, (_, i) => ({
    at: id * 1000 + i,
    kind: i % 3,
    weight: i / 7,
  }));
  return { id, text, events };
}

const server = http.createServer((req, res) => {
  if (req.url === '/gc' || req.url === '/heap') {
    if (typeof global.gc !== 'function') {
      res.writeHead(404).end('start node with --expose-gc\n');
      return;
    }
    global.gc();
    const used = process.memoryUsage();
    res.writeHead(200).end(req.url === '/gc' ? 'collected\n' : `${used.heapUsed + used.external}\n`);
    return;
  }
  served += 1;
  const record = sessionRecord(served);
  if (mode === 'keep') sessions.set(served, record);
  const body = `${record.text.length + record.events.length} ${sessions.size}\n`;
  res.writeHead(200, { 'content-length': Buffer.byteLength(body) }).end(body);
});

server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(portFile + '.tmp', String(server.address().port));
  fs.renameSync(portFile + '.tmp', portFile);
});
