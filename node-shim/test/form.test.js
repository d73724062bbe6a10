'use strict';

// How an upload's file is held (lib/express/form.js): a large one written into one Buffer as it arrives (held
// once, not as chunks and then their join: bench/batch_attacks.js row 3d, 591 -> 355 MB), chunks otherwise
// joined a slice per turn of the event loop, not in one Buffer.concat (a 90 MiB zip: 40-210 ms of the loop in one
// turn, row 2c). Counted in turns and bytes, not milliseconds: a setImmediate chain advances once per turn.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { Readable } = require('node:stream');
const { joinChunks, chunkStorage, JOIN_SLICE } = require('../lib/express/form');

const KiB = 1024;

/** Counts turns of the event loop until stopped. */
function turnCounter() {
  let turns = 0;
  let on = true;
  const tick = () => {
    if (!on) return;
    turns += 1;
    setImmediate(tick);
  };
  setImmediate(tick);
  return () => {
    on = false;
    return turns;
  };
}

/** 64 KiB chunks (as busboy hands them over), each filled with its index. @param {number} n */
const chunksOf = (n) => Array.from({ length: n }, (_, i) => Buffer.alloc(64 * KiB, i % 251));

describe('upload files held in memory', () => {
  it('joinChunks copies at most one slice per turn and joins them in order', async () => {
    const chunks = chunksOf(640); // 40 MiB
    const expected = Buffer.concat(chunks);
    const stop = turnCounter();
    const joined = await joinChunks([...chunks], expected.length);
    const turns = stop();
    assert.ok(joined.equals(expected));
    const slices = Math.ceil(expected.length / JOIN_SLICE);
    assert.ok(turns >= slices - 1, `${expected.length} bytes joined within ${turns} turns (slices of ${JOIN_SLICE})`);
    // One chunk is handed back as is: nothing to join.
    const one = Buffer.from('x');
    assert.equal(await joinChunks([one], 1), one);
  });

  it("without a Content-Length, the form's storage engine hands multer the file joined over several turns after its stream ended", async () => {
    // multer's memoryStorage (the engine before) calls back in the 'end' event itself: 0 turns for any size.
    const chunks = chunksOf(320); // 20 MiB
    const expected = Buffer.concat(chunks);
    const file = { stream: Readable.from(chunks, { objectMode: false }) };
    /** @type {() => number} */
    let stop = () => 0;
    file.stream.once('end', () => {
      stop = turnCounter();
    });
    const info = await new Promise((resolve, reject) => chunkStorage()._handleFile({}, file, (err, got) => (err ? reject(err) : resolve(got))));
    const turns = stop();
    assert.ok(info.buffer.equals(expected));
    assert.equal(info.size, expected.length);
    assert.ok(turns >= Math.ceil(expected.length / JOIN_SLICE) - 1, `joined within ${turns} turns after the stream ended`);
  });

  /** chunkStorage's file, from 64 KiB chunks, in a request declaring `declared` bytes; resolves multer's info. */
  const store = (engine, req, chunks) => new Promise((resolve, reject) => engine._handleFile(req, { stream: Readable.from(chunks, { objectMode: false }) }, (err, got) => (err ? reject(err) : resolve(got))));

  it('with a Content-Length, a large file is written into one Buffer as it arrives, a small one joined to its size', async () => {
    // multer's memoryStorage held every chunk, then their Buffer.concat: twice a large file at its end.
    const engine = chunkStorage({ fileSize: 100 * 1024 * KiB });
    const big = chunksOf(320); // 20 MiB
    const small = chunksOf(16); // 1 MiB
    const declared = 20 * 1024 * KiB + 1024 * KiB + 4 * KiB; // both files and some framing
    const req = { headers: { 'content-length': String(declared) } };
    const a = await store(engine, req, big);
    assert.ok(a.buffer.equals(Buffer.concat(big)));
    // One allocation sized from the request's Content-Length, filled in place: nothing joined at the end.
    assert.equal(a.buffer.buffer.byteLength, declared);
    const b = await store(engine, req, small);
    assert.ok(b.buffer.equals(Buffer.concat(small)));
    assert.ok(b.buffer.buffer.byteLength < 2 * 1024 * KiB, `a 1 MiB file pins ${b.buffer.buffer.byteLength} bytes`);
  });

  it('a large file that fills less than half of what is left of the request is copied out, not left pinning it', async () => {
    const engine = chunkStorage({ fileSize: 100 * 1024 * KiB });
    const chunks = chunksOf(160); // 10 MiB of a request declaring 60 MiB (the others' files follow)
    const info = await store(engine, { headers: { 'content-length': String(60 * 1024 * KiB) } }, chunks);
    assert.ok(info.buffer.equals(Buffer.concat(chunks)));
    assert.equal(info.buffer.buffer.byteLength, 10 * 1024 * KiB);
  });
});
