/**
 * What a server's JavaScript heap holds per connection, from a V8 heap snapshot taken while the idle
 * scenario holds its connections (bench/README.md, "Idle memory"):
 *
 *   node bench/heap-per-connection.mjs Heap.*.heapsnapshot 19800
 *
 * Lists the kinds of object (by constructor and property names) of which there are about as many as
 * connections, and the hash tables (Map, Set, WeakMap) large enough to be indexed by connection,
 * with the chain of properties that holds each; sizes are V8's self sizes, per connection.
 */
import { readFileSync } from 'node:fs';

const [file, connectionsArg] = process.argv.slice(2);
if (!file || !(Number(connectionsArg) > 0)) {
  process.stderr.write('usage: node bench/heap-per-connection.mjs SNAPSHOT CONNECTIONS\n');
  process.exit(2);
}
const connections = Number(connectionsArg);
/** Kinds with at least this many objects per connection are listed. */
const PER_CONNECTION_MIN = 0.9;
/** Tables of at least this many bytes per connection are listed. */
const TABLE_MIN_BYTES_PER_CONNECTION = 8;

const snapshot = JSON.parse(readFileSync(file, 'utf8'));
const { node_fields: nodeFields, node_types: [nodeTypes], edge_fields: edgeFields, edge_types: [edgeTypes] } = snapshot.snapshot.meta;
const { nodes, edges, strings } = snapshot;
const NF = nodeFields.length;
const EF = edgeFields.length;
const [TYPE, NAME, SIZE, EDGES] = ['type', 'name', 'self_size', 'edge_count'].map((f) => nodeFields.indexOf(f));
const [E_TYPE, E_NAME, E_TO] = ['type', 'name_or_index', 'to_node'].map((f) => edgeFields.indexOf(f));
const count = nodes.length / NF;
const firstEdge = new Uint32Array(count + 1);
for (let i = 0, e = 0; i < count; i++) { firstEdge[i] = e; e += nodes[i * NF + EDGES] * EF; }
firstEdge[count] = edges.length;

const typeOf = (i) => nodeTypes[nodes[i * NF + TYPE]];
const nameOf = (i) => strings[nodes[i * NF + NAME]];
const sizeOf = (i) => nodes[i * NF + SIZE];
const edgeName = (e) => {
  const type = edgeTypes[edges[e + E_TYPE]];
  return type === 'element' || type === 'hidden' ? '#' : strings[edges[e + E_NAME]];
};
function propertyNames(i) {
  const names = [];
  for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += EF) {
    if (edgeTypes[edges[e + E_TYPE]] === 'property' && edgeName(e) !== '__proto__') names.push(edgeName(e));
  }
  return names;
}
function kindOf(i) {
  const type = typeOf(i);
  if (type.includes('string')) return 'string';
  if (type === 'number') return 'heap number';
  if (type === 'object') return `${nameOf(i)} {${propertyNames(i).join(', ')}}`;
  return `${type}: ${nameOf(i).slice(0, 40)}`;
}

const kinds = new Map();
let total = 0;
for (let i = 0; i < count; i++) {
  const kind = kindOf(i);
  const entry = kinds.get(kind) ?? { objects: 0, bytes: 0 };
  entry.objects++;
  entry.bytes += sizeOf(i);
  total += sizeOf(i);
  kinds.set(kind, entry);
}
process.stdout.write(`heap: ${(total / 1024 / 1024).toFixed(1)} MiB of objects, ${Math.round(total / connections)} B per connection over ${connections} connections\n\n`);
process.stdout.write('objects per connection | B per connection | kind\n');
for (const [kind, { objects, bytes }] of [...kinds].filter(([, k]) => k.objects >= connections * PER_CONNECTION_MIN).sort((a, b) => b[1].bytes - a[1].bytes)) {
  process.stdout.write(`${(objects / connections).toFixed(2).padStart(6)} | ${(bytes / connections).toFixed(0).padStart(5)} | ${kind}\n`);
}

// The hash tables' backing arrays, and who holds them (three steps up, strong edges only).
const tables = [];
for (let i = 0; i < count; i++) if (typeOf(i) === 'array' && sizeOf(i) >= connections * TABLE_MIN_BYTES_PER_CONNECTION) tables.push(i);
const holderOf = new Map();
let wanted = new Set(tables);
const chains = new Map(tables.map((i) => [i, []]));
let frontier = new Map(tables.map((i) => [i, i]));
for (let depth = 0; depth < 4 && frontier.size; depth++) {
  const found = new Map();
  for (let i = 0; i < count; i++) {
    for (let e = firstEdge[i]; e < firstEdge[i + 1]; e += EF) {
      const to = edges[e + E_TO] / NF;
      if (!wanted.has(to) || found.has(to) || edgeTypes[edges[e + E_TYPE]] === 'weak') continue;
      found.set(to, `${nameOf(i)}.${edgeName(e)}`);
      holderOf.set(to, i);
    }
  }
  const next = new Map();
  for (const [node, root] of frontier) {
    if (!found.has(node)) continue;
    chains.get(root).push(found.get(node));
    next.set(holderOf.get(node), root);
  }
  frontier = next;
  wanted = new Set(frontier.keys());
}
process.stdout.write('\nB per connection | table held by\n');
for (const i of tables.sort((a, b) => sizeOf(b) - sizeOf(a))) {
  process.stdout.write(`${(sizeOf(i) / connections).toFixed(0).padStart(5)} | ${chains.get(i).join(' ← ')}\n`);
}
