// Runs DevTools' own heap snapshot analysis (npm heap-snapshot-toolkit, which bundles
// devtools-frontend's HeapSnapshot.ts) on a snapshot and prints its Summary view as JSON:
//   node devtools-summary.mjs FILE.heapsnapshot[.gz]
// Output: {"total_bytes", "classes": [{key, name, count, shallow_bytes,
// retained_bytes}], "statistics": {total, native, typed_arrays, v8_heap, code, strings,
// js_arrays, system}} where key is DevTools' class key (",Name" or "script,line,column,Name") and
// statistics is its Statistics view; "allocation_sites" is its Allocation view
// (allocationTracesTops, under leaksift's key names) for a snapshot taken with allocation
// tracking, null otherwise. With ALLOCATION_STACKS_OF=ID,ID,… in the environment it adds
// "allocation_stacks": {ID: [{function, script, script_id, line, column}, …]} (DevTools'
// allocationStack of each node, innermost first; [] for a node without one).
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { parse, DevToolsAPI } from 'heap-snapshot-toolkit';

const file = process.argv[2];
let stream = createReadStream(file);
if (file.endsWith('.gz')) stream = stream.pipe(createGunzip());
stream.setEncoding('utf-8');
const snapshot = await parse(stream);
const aggregates = await snapshot.aggregatesWithFilter(new DevToolsAPI.HeapSnapshotModel.NodeFilter());
const classes = Object.entries(aggregates).map(([key, a]) => ({
  key,
  name: a.name,
  count: a.count,
  shallow_bytes: a.self,
  retained_bytes: a.maxRet,
}));
classes.sort((x, y) => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0));
const statistics = await snapshot.getStatistics();
let allocationSites = null;
try {
  const tops = await snapshot.allocationTracesTops();
  allocationSites = tops.map((t) => ({
    function: t.name,
    script: t.scriptName,
    script_id: t.scriptId,
    line: t.line,
    column: t.column,
    allocations: t.count,
    allocated_bytes: t.size,
    live_count: t.liveCount,
    live_bytes: t.liveSize,
  }));
} catch {
  // No allocation profile: the snapshot was taken without allocation tracking.
}
let allocationStacks;
if (process.env.ALLOCATION_STACKS_OF) {
  allocationStacks = {};
  const wanted = new Set(process.env.ALLOCATION_STACKS_OF.split(',').map(Number));
  const fields = snapshot.nodeFieldCount;
  for (let index = 0; index < snapshot.nodes.length; index += fields) {
    const id = snapshot.nodes[index + snapshot.nodeIdOffset];
    if (!wanted.has(id)) continue;
    const stack = (await snapshot.allocationStack(index)) || [];
    allocationStacks[id] = stack.map((f) => ({
      function: f.functionName,
      script: f.scriptName,
      script_id: f.scriptId,
      line: f.line,
      column: f.column,
    }));
  }
}
process.stdout.write(JSON.stringify({
  total_bytes: statistics.total,
  classes,
  // The Statistics view, under leaksift's key names.
  statistics: {
    total: statistics.total,
    native: statistics.native.total,
    typed_arrays: statistics.native.typedArrays,
    v8_heap: statistics.v8heap.total,
    code: statistics.v8heap.code,
    strings: statistics.v8heap.strings,
    js_arrays: statistics.v8heap.jsArrays,
    system: statistics.v8heap.system,
  },
  allocation_sites: allocationSites,
  allocation_stacks: allocationStacks,
}) + '\n');
