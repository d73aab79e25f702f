/**
 * The bare minimum log pipeline the hub is measured against, in a process of its own as the hub is:
 * fs.watch on the file → read what was appended → one ws send of those bytes per read to every client.
 * Usage: baselineServer.js <file>; prints its port, stops on SIGTERM.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

const file = process.argv[2];
const server = http.createServer();
const wss = new WebSocketServer({ server, perMessageDeflate: false });
const fd = fs.openSync(file, 'r');
const buffer = Buffer.allocUnsafe(1024 * 1024);
let position = 0;

function read(): void {
  for (;;) {
    const length = fs.readSync(fd, buffer, 0, buffer.length, position);
    if (length === 0) return;
    position += length;
    // One copy shared by every client (the read buffer is reused), sent as the bytes it read.
    const chunk = Buffer.from(buffer.subarray(0, length));
    for (const client of wss.clients) client.send(chunk);
  }
}

fs.watch(file, read);
setInterval(read, 250); // as the hub's safety poll
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
process.on('SIGTERM', () => process.exit(0));
