#!/usr/bin/env node
// Minimal relay on Node's `ws`: the original hub's stack, the peer tailhub has to beat.
//
// It does what the original hub did on its hot path and nothing more: parse each incoming
// JSON message to find where it goes, then forward the original bytes to every connection
// subscribed to its containerID and to every connection subscribed to "*". No seq, no
// history, no auth, no limits, no echo to the sender.
//
// A connection is subscribed by `?containerID=X` in its URL, or by sending
// {"type":"subscribe","containerID":X}. Usage: node node_relay.js --port P [--host H]

'use strict';

const { WebSocketServer } = require('ws');

function argument(name, fallback) {
  const index = process.argv.indexOf(name);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

const host = argument('--host', '127.0.0.1');
const port = Number.parseInt(argument('--port', '8080'), 10);

/** containerID (or "*") -> Set of subscribed sockets. */
const subscribers = new Map();

function subscribe(socket, containerID) {
  let set = subscribers.get(containerID);
  if (set === undefined) {
    set = new Set();
    subscribers.set(containerID, set);
  }
  set.add(socket);
  socket.subscriptions.add(containerID);
}

function forward(set, data, sender) {
  if (set === undefined) return;
  for (const socket of set) {
    if (socket !== sender && socket.readyState === 1) socket.send(data, { binary: false });
  }
}

const server = new WebSocketServer({ host, port, perMessageDeflate: false, clientTracking: false });

server.on('connection', (socket, request) => {
  socket.subscriptions = new Set();
  const query = new URL(request.url, 'http://relay').searchParams.get('containerID');
  if (query) subscribe(socket, query);

  socket.on('message', (data, isBinary) => {
    if (isBinary) return;
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message === null || typeof message !== 'object') return;
    const containerID = message.containerID;
    if (typeof containerID !== 'string') return;
    if (message.type === 'subscribe') {
      subscribe(socket, containerID);
      return;
    }
    forward(subscribers.get(containerID), data, socket);
    if (containerID !== '*') forward(subscribers.get('*'), data, socket);
  });

  socket.on('error', () => {});
  socket.on('close', () => {
    for (const containerID of socket.subscriptions) {
      const set = subscribers.get(containerID);
      if (set === undefined) continue;
      set.delete(socket);
      if (set.size === 0) subscribers.delete(containerID);
    }
  });
});

server.on('listening', () => {
  process.stdout.write(`node ws relay listening on ${host}:${port}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
