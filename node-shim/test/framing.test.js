'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { encode } = require('@msgpack/msgpack');
const { FrameDecoder, encodeFrame, encodeFrameBuffer, FrameError } = require('../lib/framing');

function collect(opts = {}) {
  const messages = [];
  const errors = [];
  const d = new FrameDecoder({ onMessage: (m) => messages.push(m), onError: (e) => errors.push(e), ...opts });
  return { d, messages, errors };
}

function rawFrame(payload) {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(payload.length);
  return Buffer.concat([h, payload]);
}

const image = Buffer.alloc(70_000, 7); // larger than one pipe chunk
const sample = [
  { id: 1, ok: true, image, mime: 'image/png', stats: { rss_mb: 81.5, peak_rss_mb: 250.1, jobs: 1 } },
  { op: 'ready', protocol: 1, pid: 42, models_available: ['u2netp'], limits: { max_rss_mb: null } },
  { id: 2, ok: false, error: { code: 'invalid_image', message: 'nope' }, stats: { rss_mb: 80, peak_rss_mb: 250, jobs: 2 } },
];

test('encodeFrame: 4-byte big-endian length, then a msgpack map with bin', () => {
  const [h, p] = encodeFrame({ id: 7, op: 'remove', image: Buffer.from([1, 2, 3]) });
  assert.equal(h.length, 4);
  assert.equal(h.readUInt32BE(0), p.length);
  assert.ok(p[0] >= 0x80 && p[0] <= 0x8f, 'fixmap');
  assert.ok(p.includes(Buffer.from([0xc4, 3, 1, 2, 3])), 'image is msgpack bin8, not str');
  assert.throws(() => encodeFrame([1, 2]), TypeError);
});

test('encodeFrame: a large image is spliced in uncopied and decodes the same as the encoder\'s frame', () => {
  for (const size of [64 * 1024, 70_000, 300_000]) {
    const image = Buffer.alloc(size, 7);
    image[0] = 1;
    image[size - 1] = 9;
    const message = { id: 3, op: 'remove', image, options: { max_size: 0, bg_color: '#ffffff' } };
    const parts = encodeFrame(message);
    assert.equal(parts.length, 3, 'header, the rest of the map, the image');
    assert.strictEqual(parts[2], image, 'the caller\'s buffer itself, not a copy');
    assert.equal(parts[0].readUInt32BE(0), parts[1].length + parts[2].length);
    const { d, messages, errors } = collect();
    d.push(Buffer.concat(parts));
    assert.deepEqual(errors, []);
    assert.equal(messages.length, 1);
    assert.deepEqual(Object.keys(messages[0]).sort(), ['id', 'image', 'op', 'options']);
    assert.ok(Buffer.from(messages[0].image).equals(image));
    assert.deepEqual(messages[0].options, message.options);
  }
  // A Uint8Array that is a view into a larger buffer is spliced as that view.
  const backing = new Uint8Array(200_000).fill(5);
  const view = backing.subarray(1000, 101_000);
  const parts = encodeFrame({ id: 1, op: 'remove', image: view });
  assert.equal(parts[2].length, 100_000);
  const { d, messages } = collect();
  d.push(Buffer.concat(parts));
  assert.equal(messages[0].image.length, 100_000);
});

test('decodes frames pushed whole, bin as Buffer', () => {
  const { d, messages, errors } = collect();
  for (const m of sample) d.push(encodeFrameBuffer(m));
  assert.equal(errors.length, 0);
  assert.equal(messages.length, 3);
  assert.ok(Buffer.isBuffer(messages[0].image));
  assert.ok(messages[0].image.equals(image));
  assert.deepEqual(messages[1].models_available, ['u2netp']);
  assert.equal(messages[2].error.code, 'invalid_image');
});

test('decodes several frames in one chunk', () => {
  const { d, messages } = collect();
  d.push(Buffer.concat(sample.map(encodeFrameBuffer)));
  assert.equal(messages.length, 3);
  assert.equal(d.pendingBytes, 0);
});

test('decodes frames split at every possible byte boundary', () => {
  const stream = Buffer.concat([encodeFrameBuffer(sample[2]), encodeFrameBuffer(sample[1])]);
  for (let cut = 1; cut < stream.length; cut++) {
    const { d, messages, errors } = collect();
    d.push(stream.subarray(0, cut));
    d.push(stream.subarray(cut));
    assert.equal(errors.length, 0, `cut at ${cut}`);
    assert.equal(messages.length, 2, `cut at ${cut}`);
    assert.deepEqual(messages[0], sample[2]);
  }
});

test('decodes a stream fed one byte at a time and in random chunk sizes', () => {
  const stream = Buffer.concat(sample.map(encodeFrameBuffer));
  {
    const { d, messages } = collect();
    const small = Buffer.concat([encodeFrameBuffer(sample[1]), encodeFrameBuffer(sample[2])]);
    for (const b of small) d.push(Buffer.from([b]));
    assert.equal(messages.length, 2);
  }
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 9000) + 1;
  for (let round = 0; round < 20; round++) {
    const { d, messages, errors } = collect();
    for (let i = 0; i < stream.length; ) {
      const n = rnd();
      d.push(stream.subarray(i, i + n));
      i += n;
    }
    assert.equal(errors.length, 0);
    assert.equal(messages.length, 3);
    assert.ok(messages[0].image.equals(image));
  }
});

test('a trailing partial frame waits for the rest', () => {
  const { d, messages } = collect();
  const f = encodeFrameBuffer(sample[1]);
  d.push(Buffer.concat([encodeFrameBuffer(sample[2]), f.subarray(0, 10)]));
  assert.equal(messages.length, 1);
  assert.equal(d.pendingBytes, 6); // the header was consumed
  d.push(f.subarray(10));
  assert.equal(messages.length, 2);
});

test('garbage text on stdout is a FrameError at once (huge length)', () => {
  const { d, messages, errors } = collect();
  d.push(Buffer.from('Warning: something printed to stdout\n'));
  assert.equal(messages.length, 0);
  assert.equal(errors.length, 1);
  assert.ok(errors[0] instanceof FrameError);
  assert.match(errors[0].message, /exceeds the client's limit/);
  d.push(encodeFrameBuffer(sample[1])); // ignored once failed
  assert.equal(messages.length, 0);
  assert.equal(errors.length, 1);
});

test('a payload that does not start like a msgpack map fails on its first byte', () => {
  const { d, errors } = collect();
  const h = Buffer.alloc(4);
  h.writeUInt32BE(1000);
  d.push(Buffer.concat([h, Buffer.from('hello')]));
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /not a MessagePack map/);
});

test('zero length, undecodable payload, and non-map payloads are errors', () => {
  {
    const { d, errors } = collect();
    d.push(Buffer.alloc(4));
    assert.match(errors[0].message, /length 0/);
  }
  {
    const { d, errors } = collect();
    d.push(rawFrame(Buffer.from([0x82, 0xa1, 0x61]))); // map of 2, truncated
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /bad frame payload/);
  }
  {
    const { d, errors } = collect();
    d.push(rawFrame(Buffer.from(encode([1, 2, 3]))));
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /not a MessagePack map/);
  }
  {
    const { d, errors } = collect();
    d.push(rawFrame(Buffer.concat([Buffer.from(encode({ a: 1 })), Buffer.from([0x01])]))); // extra bytes
    assert.equal(errors.length, 1);
  }
});

test('frames before a bad one in the same chunk are still delivered', () => {
  const { d, messages, errors } = collect();
  d.push(Buffer.concat([encodeFrameBuffer(sample[1]), Buffer.from('garbage!')]));
  assert.equal(messages.length, 1);
  assert.equal(errors.length, 1);
});

test('maxFrameBytes bounds what the client buffers', () => {
  const { d, errors } = collect({ maxFrameBytes: 1024 });
  d.push(encodeFrameBuffer({ image: Buffer.alloc(2048) }));
  assert.equal(errors.length, 1);
  assert.match(errors[0].message, /exceeds the client's limit of 1024 bytes/);
});
