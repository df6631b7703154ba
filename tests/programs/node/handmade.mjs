// Writes a small hand-built .heapsnapshot (to process.argv[2]) that exercises DevTools' corner
// cases: a node reachable only through a weak edge, an unreachable two-node cycle, a self edge,
// the WeakMap table->value ephemeron edge, the page-owned rule (a debugger-like retainer outside
// the page), an internal array owned by one object (its size folds into the owner), detached
// embedder nodes, plain objects sharing a property set (class `{a, b}`), one class name at two
// source locations, and a lone UTF-16 surrogate in the string table.
import { writeFileSync } from 'node:fs';

const strings = [''];
const s = (text) => {
  const i = strings.indexOf(text);
  if (i >= 0) return i;
  strings.push(text);
  return strings.length - 1;
};
const NODE_TYPES = ['hidden', 'array', 'string', 'object', 'code', 'closure', 'regexp', 'number',
  'native', 'synthetic', 'concatenated string', 'sliced string', 'symbol', 'bigint', 'object shape'];
const EDGE_TYPES = ['context', 'element', 'property', 'internal', 'hidden', 'shortcut', 'weak'];
const nodes = [];
const add = (type, name, id, size, detachedness = 0) => {
  nodes.push({ type, name, id, size, detachedness, edges: [] });
  return nodes.length - 1;
};
const edge = (from, type, nameOrIndex, to) => nodes[from].edges.push({ type, nameOrIndex, to });

const root = add('synthetic', '', 1, 0);
const gcRoots = add('synthetic', '(GC roots)', 3, 0);
const global = add('object', 'global', 5, 100);
const fooA = add('object', 'Foo', 7, 50);
const fooB = add('object', 'Foo', 9, 60);
const elements = add('array', '(object elements)', 11, 30);
const lonely = add('object', 'Lonely', 13, 40);
const lonelyChild = add('object', 'LonelyChild', 15, 20);
const cycA = add('object', 'Cyc', 17, 10);
const cycB = add('object', 'Cyc', 19, 10);
const plain1 = add('object', 'Object', 21, 16);
const plain2 = add('object', 'Object', 23, 16);
const table = add('array', 'system / ObjectHashTable', 25, 24);
const value = add('object', 'Val', 27, 12);
const div = add('native', '<div id="x">', 29, 80, 2);
const span = add('native', 'HTMLSpanElement', 31, 40, 0);
const debuggerRef = add('object', 'Debugger', 33, 8);
const number = add('number', 'heap number', 35, 16);
const text = add('string', 'caf\ud800 \u00e9 "quoted"', 37, 32);

const ephemeron = '1 / part of key (Foo @9) -> value (Val @27) pair in WeakMap (table @25)';
edge(root, 'shortcut', '1', global);
edge(root, 'element', 1, gcRoots);
edge(gcRoots, 'element', 1, debuggerRef);
edge(gcRoots, 'element', 2, div);
edge(global, 'property', 'foo', fooA);
edge(global, 'property', 'p1', plain1);
edge(global, 'property', 'p2', plain2);
edge(global, 'weak', 'w', lonely);
edge(global, 'property', 'self', global);
edge(global, 'property', 'map', table);
edge(global, 'property', 'text', text);
edge(fooA, 'property', 'child', fooB);
edge(fooA, 'internal', 'elements', elements);
edge(fooB, 'internal', ephemeron, value);
edge(lonely, 'property', 'kid', lonelyChild);
edge(cycA, 'property', 'next', cycB);
edge(cycB, 'property', 'next', cycA);
edge(plain1, 'property', 'a', number);
edge(plain1, 'property', 'b', number);
edge(plain2, 'property', 'b', number);
edge(plain2, 'property', 'a', number);
edge(table, 'internal', ephemeron, value);
edge(div, 'property', 'child', span);
edge(debuggerRef, 'property', 'target', fooA);

const FIELDS = 7;
const flatNodes = [];
const flatEdges = [];
for (const n of nodes) {
  flatNodes.push(NODE_TYPES.indexOf(n.type), s(n.name), n.id, n.size, n.edges.length, 0, n.detachedness);
  for (const e of n.edges) {
    const label = (e.type === 'element' || e.type === 'hidden') ? e.nameOrIndex : s(e.nameOrIndex);
    flatEdges.push(EDGE_TYPES.indexOf(e.type), label, e.to * FIELDS);
  }
}
const snapshot = {
  snapshot: {
    meta: {
      node_fields: ['type', 'name', 'id', 'self_size', 'edge_count', 'trace_node_id', 'detachedness'],
      node_types: [NODE_TYPES, 'string', 'number', 'number', 'number', 'number', 'number'],
      edge_fields: ['type', 'name_or_index', 'to_node'],
      edge_types: [EDGE_TYPES, 'string_or_number', 'node'],
      trace_function_info_fields: ['function_id', 'name', 'script_name', 'script_id', 'line', 'column'],
      trace_node_fields: ['id', 'function_info_index', 'count', 'size', 'children'],
      sample_fields: ['timestamp_us', 'last_assigned_id'],
      location_fields: ['object_index', 'script_id', 'line', 'column'],
    },
    node_count: nodes.length,
    edge_count: flatEdges.length / 3,
    trace_function_count: 0,
  },
  nodes: flatNodes,
  edges: flatEdges,
  trace_function_infos: [],
  trace_tree: [],
  samples: [],
  locations: [fooA * FIELDS, 7, 10, 4],
  strings,
};
// JSON.stringify writes lone surrogates as \ud800 escapes, as V8 does.
writeFileSync(process.argv[2], JSON.stringify(snapshot));
