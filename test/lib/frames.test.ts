/**
 * frames.ts: where the frames an upgraded socket writes begin and end, counted from the
 * bytes the application writes (the 101 response, then frames of every length form, masked
 * or not, split across writes however it likes), so a close frame lands only between two
 * frames (issue 24).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { isWebSocketRequest, watchFrames } from '../../src/lib/frames.js';

const HEAD = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n';

/** A server frame (unmasked unless `mask`) with a payload of `n` bytes, in the length form `n` needs. */
function frame(n: number, mask = false): Buffer {
  const len = n < 126 ? Buffer.from([n]) : n < 65536 ? Buffer.from([126, n >> 8, n & 255]) : Buffer.concat([Buffer.from([127]), (() => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  })()]);
  len[0] = (len[0] as number) | (mask ? 0x80 : 0);
  return Buffer.concat([Buffer.from([0x82]), len, mask ? Buffer.alloc(4) : Buffer.alloc(0), Buffer.alloc(n, 7)]);
}

function watched() {
  const socket = new PassThrough();
  const written: Buffer[] = [];
  socket.on('data', (d: Buffer) => written.push(d));
  return { socket, watch: watchFrames(socket), written };
}

test('frames: a boundary only after a complete 101 head and after each complete frame, whatever the length form or the split', () => {
  const { socket, watch } = watched();
  assert.equal(watch.phase, 'head');
  socket.write(HEAD.slice(0, 20));
  assert.equal(watch.atBoundary(), false);
  socket.write(HEAD.slice(20));
  assert.equal(watch.phase, 'frames');
  assert.equal(watch.atBoundary(), true);
  for (const f of [frame(5), frame(300), frame(70_000), frame(10, true)]) {
    for (const cut of [1, 2, 3, f.length - 1]) {
      socket.write(f.subarray(0, cut));
      assert.equal(watch.atBoundary(), false, `${f.length} bytes cut at ${cut}`);
      socket.write(f.subarray(cut));
      assert.equal(watch.atBoundary(), true);
    }
  }
  // Two frames and the start of a third in one write.
  socket.write(Buffer.concat([frame(3), frame(4), frame(5).subarray(0, 4)]));
  assert.equal(watch.atBoundary(), false);
  socket.write(frame(5).subarray(4), 'latin1');
  assert.equal(watch.atBoundary(), true);
});

test('frames: a close waits for the end of the frame being written, then later writes are dropped (nothing follows a close)', () => {
  const { socket, watch, written } = watched();
  socket.write(HEAD);
  const f = frame(100);
  socket.write(f.subarray(0, 50));
  const close = Buffer.from([0x88, 0x02, 0x03, 0xe9]);
  watch.whenBoundary(() => watch.sendLast(close));
  socket.write(f.subarray(50));
  socket.write(frame(1));
  const all = Buffer.concat(written);
  assert.deepEqual(all.subarray(all.length - 4), close);
  assert.equal(all.length, Buffer.byteLength(HEAD) + f.length + close.length);
});

test('frames: a response other than 101 is not a WebSocket (never framed); the handshake request is recognised by its headers', () => {
  const { socket, watch } = watched();
  socket.write('HTTP/1.1 400 Bad Request\r\n\r\n');
  assert.equal(watch.phase, 'unknown');
  assert.equal(watch.atBoundary(), false);
  assert.equal(isWebSocketRequest({ upgrade: 'WebSocket', 'sec-websocket-key': 'k' }), true);
  assert.equal(isWebSocketRequest({ upgrade: 'h2c, websocket', 'sec-websocket-key': 'k' }), true);
  assert.equal(isWebSocketRequest({ upgrade: 'websocket' }), false);
  assert.equal(isWebSocketRequest({ upgrade: 'h2c', 'sec-websocket-key': 'k' }), false);
});
