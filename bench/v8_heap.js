// Builds a Node heap of roughly the requested snapshot size and writes one heap snapshot:
//   node --max-old-space-size=16000 bench/v8_heap.js OUT.heapsnapshot SIZE_MB
// The heap mixes class instances in trees, plain objects, Maps, arrays, closures and strings, so
// the snapshot has the usual ratio of about 2.3 edges per node.
'use strict';
const v8 = require('v8');

const [out, sizeMb] = [process.argv[2], Number(process.argv[3] || 260)];
// Calibrated on Node 20: about 2,000 units per snapshot megabyte.
const units = Math.round(sizeMb * 2000);

class Order {
  constructor(id, customer) {
    this.id = id;
    this.customer = customer;
    this.lines = [];
    this.note = 'order-' + id;
  }
}
class Customer {
  constructor(id) {
    this.id = id;
    this.name = 'customer ' + (id % 5000);
    this.tags = { vip: id % 7 === 0, region: 'r' + (id % 13) };
  }
}

const customers = [];
const orders = new Map();
const callbacks = [];
for (let i = 0; i < units; i++) {
  if (i % 4 === 0) customers.push(new Customer(i));
  const customer = customers[customers.length - 1];
  const order = new Order(i, customer);
  order.lines.push({ sku: i % 997, qty: (i % 5) + 1 });
  orders.set(i, order);
  if (i % 16 === 0) callbacks.push(() => order.id + customer.id);
}
globalThis.benchState = { customers, orders, callbacks };
v8.writeHeapSnapshot(out);
