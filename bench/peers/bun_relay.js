// Minimal relay on Bun's built-in WebSocket server (uWebSockets, in C++), with its native
// topic pub/sub: the fastest relay there is, the ceiling a hub in Python is measured against.
//
// The same protocol as node_relay.js: parse each incoming JSON message to find where it goes,
// then forward the original text to every connection subscribed to its containerID and to
// every connection subscribed to "*". No seq, no history, no auth, no limits, no echo to the
// sender (`ws.publish` skips the publishing socket itself, as node_relay.js does).
//
// A connection is subscribed by `?containerID=X` in its URL, or by sending
// {"type":"subscribe","containerID":X}. Usage: bun bun_relay.js --port P [--host H]

function argument(name, fallback) {
  const index = process.argv.indexOf(name);
  return index >= 0 && index + 1 < process.argv.length ? process.argv[index + 1] : fallback;
}

const host = argument('--host', '127.0.0.1');
const port = Number.parseInt(argument('--port', '8080'), 10);

Bun.serve({
  hostname: host,
  port,
  fetch(request, server) {
    const containerID = new URL(request.url).searchParams.get('containerID');
    if (server.upgrade(request, { data: { containerID } })) return undefined;
    return new Response('WebSocket only', { status: 426 });
  },
  websocket: {
    perMessageDeflate: false,
    // The bench's clients never answer pings and D keeps connections idle: no timeout.
    idleTimeout: 0,
    sendPings: false,
    open(ws) {
      if (ws.data.containerID) ws.subscribe(ws.data.containerID);
    },
    message(ws, data) {
      if (typeof data !== 'string') return;
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
        ws.subscribe(containerID);
        return;
      }
      ws.publish(containerID, data);
      if (containerID !== '*') ws.publish('*', data);
    },
  },
});

process.stdout.write(`bun relay listening on ${host}:${port}\n`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
