// Runs DevTools' own Comparison view (npm heap-snapshot-toolkit, which bundles devtools-frontend's
// HeapSnapshot.ts: objects of the second snapshot matched by id against the first) and prints it
// as JSON. The calls are made in the order of DevTools' HeapSnapshotDiffDataGrid.populateChildren:
// the base snapshot's objects are classified with the COMPARED snapshot's interface definitions
// (the toolkit's own `diff()` uses the base snapshot's, which names plain objects differently).
//   node devtools-comparison.mjs BASE.heapsnapshot COMPARED.heapsnapshot
// Output: [{key, name, new_count, deleted_count, new_bytes, deleted_bytes}] for every class with
// new or deleted objects, key being DevTools' class key (",Name" or "script,line,column,Name").
import { createReadStream } from 'node:fs';
import { parse } from 'heap-snapshot-toolkit';

function open(file) {
  const stream = createReadStream(file);
  stream.setEncoding('utf-8');
  return parse(stream);
}

const base = await open(process.argv[2]);
const compared = await open(process.argv[3]);
const definitions = await compared.interfaceDefinitions();
const baseAggregates = await base.aggregatesForDiff(definitions);
const comparison = await compared.calculateSnapshotDiff(base.uid, baseAggregates);
const classes = Object.entries(comparison)
  .map(([key, c]) => ({
    key,
    name: c.name,
    new_count: c.addedCount,
    deleted_count: c.removedCount,
    new_bytes: c.addedSize,
    deleted_bytes: c.removedSize,
  }))
  .filter((c) => c.new_count + c.deleted_count > 0);
classes.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
process.stdout.write(JSON.stringify(classes) + '\n');
