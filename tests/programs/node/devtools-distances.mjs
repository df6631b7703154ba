// Prints DevTools' own node distances (HeapSnapshot.ts calculateDistances, as the Retainers view
// ranks retainers by) for every node of a snapshot, one "id distance" line per node in node
// order; unreachable nodes print DevTools' noDistance (-5). Used by the paths tests.
//   node devtools-distances.mjs FILE.heapsnapshot[.gz]
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { parse } from 'heap-snapshot-toolkit';

const file = process.argv[2];
let stream = createReadStream(file);
if (file.endsWith('.gz')) stream = stream.pipe(createGunzip());
stream.setEncoding('utf-8');
const snapshot = await parse(stream);
const fields = snapshot.nodeFieldCount;
const lines = [];
for (let i = 0; i < snapshot.nodeCount; i++) {
  lines.push(`${snapshot.nodes.getValue(i * fields + snapshot.nodeIdOffset)} ${snapshot.nodeDistances[i]}`);
}
process.stdout.write(lines.join('\n') + '\n');
