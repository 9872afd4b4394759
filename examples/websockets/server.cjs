// WebSockets that survive `hitless reload`: with hitless/ws each connection moves to the new
// generation with its state (here a message count and the generation it opened on), on the
// same TCP connection, unseen by the client. docs/websockets.md explains every step.
//
// In your app (a default `npm init -y` project, CommonJS): `npm install hitless ws`, copy
// this file as server.js, then
//   npx hitless start --listen 127.0.0.1:3000 --workers 2 -- node server.js
// In a clone of hitless: `npm run build`, then
//   node build/src/cli/main.js start --config examples/websockets/hitless.json
// Connect a client (`npx wscat -c ws://127.0.0.1:3000/`), send a few messages, run
// `npx hitless reload` (`--config examples/websockets/hitless.json` in the clone), send more:
// the count goes on, `opened` stays, `generation` is the new one, and the client saw no close.
'use strict';
const http = require('node:http');
const { WebSocketServer } = require('ws');
const { listen, ready, workerInfo } = require('hitless');
const { moveWebSockets } = require('hitless/ws');

const { generation = 0 } = workerInfo();
const server = http.createServer((req, res) => res.end(`generation ${generation}: open a WebSocket here\n`));
const wss = new WebSocketServer({ server });
// Per-connection state, as JSON: what moves with the connection.
const states = new WeakMap();

// A new connection, or one that moved here from an old worker: the same set-up.
function onOpen(ws, state) {
  states.set(ws, state);
  ws.on('message', (data) => {
    state.count += 1;
    ws.send(JSON.stringify({ echo: String(data), count: state.count, opened: state.opened, generation }));
  });
}

wss.on('connection', (ws) => onOpen(ws, { count: 0, opened: generation }));
moveWebSockets(wss, {
  serialize: (ws) => states.get(ws),
  adopt: (ws, state) => onOpen(ws, state),
  moved: (ws) => states.delete(ws),
});

// Adopts the master's socket (standalone, `node server.js`: binds PORT or 3000), then READY.
listen(server).then(() => ready());
