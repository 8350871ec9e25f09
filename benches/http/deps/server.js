// Loopback dependencies for the /readyz benchmark.
//
//   node server.js FAST_PORT HANG_PORT [HANG_SECONDS]
//
// FAST_PORT answers every request at once with `200 ok` (keep-alive), standing in for 19
// healthy dependencies. HANG_PORT accepts connections, reads the request and never answers:
// it closes the socket after HANG_SECONDS (default 30), standing in for a hung dependency.
// Both listen on 127.0.0.1 only.
'use strict';

const http = require('node:http');
const net = require('node:net');

const [fastPort, hangPort, hangSeconds = '30'] = process.argv.slice(2).map(Number);
if (!fastPort || !hangPort) {
  console.error('usage: node server.js FAST_PORT HANG_PORT [HANG_SECONDS]');
  process.exit(2);
}

const body = Buffer.from('ok\n');
const fast = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
  res.end(body);
});
fast.keepAliveTimeout = 60_000;

let hanging = 0;
const hang = net.createServer((socket) => {
  hanging += 1;
  socket.on('data', () => {}); // read and drop the request
  socket.on('error', () => {});
  const timer = setTimeout(() => socket.destroy(), hangSeconds * 1000);
  socket.on('close', () => {
    hanging -= 1;
    clearTimeout(timer);
  });
});

fast.listen(fastPort, '127.0.0.1', () => {
  hang.listen(hangPort, '127.0.0.1', () => {
    console.log(`deps: fast on 127.0.0.1:${fastPort}, hanging ${hangSeconds} s on 127.0.0.1:${hangPort}`);
  });
});

const stop = () => {
  fast.close();
  hang.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('SIGUSR2', () => console.log(`deps: ${hanging} connections held by the hanging dependency`));
