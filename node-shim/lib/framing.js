'use strict';

/**
 * Frames of the pyworker protocol: a 4-byte big-endian payload length, then a
 * MessagePack map (docs/protocol.md#transport).
 *
 * @module pyworker/framing
 */

const { encode, decode } = require('@msgpack/msgpack');

const HEADER_BYTES = 4;
/** Largest frame the client accepts from a worker by default (256 MiB). */
const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;
const MAX_UINT32 = 0xffffffff;

/** The payload of a frame, or a frame header, is not what the protocol allows. */
class FrameError extends Error {
  /** @param {string} message @param {{cause?: unknown}} [opts] */
  constructor(message, opts) {
    super(message, opts);
    this.name = 'FrameError';
  }
}

/** Below this, an image is encoded with the rest of the map: splicing would not save anything. */
const SPLICE_MIN_BYTES = 64 * 1024;
const IMAGE_KEY = encode('image');

/** MessagePack header of a map of `n` entries. @param {number} n */
function mapHeader(n) {
  if (n <= 15) return Buffer.from([0x80 | n]);
  const b = Buffer.allocUnsafe(n <= 0xffff ? 3 : 5);
  if (n <= 0xffff) (b[0] = 0xde), b.writeUInt16BE(n, 1);
  else (b[0] = 0xdf), b.writeUInt32BE(n, 1);
  return b;
}

/** MessagePack header of a bin of `n` bytes. @param {number} n */
function binHeader(n) {
  if (n <= 0xff) return Buffer.from([0xc4, n]);
  const b = Buffer.allocUnsafe(n <= 0xffff ? 3 : 5);
  if (n <= 0xffff) (b[0] = 0xc5), b.writeUInt16BE(n, 1);
  else (b[0] = 0xc6), b.writeUInt32BE(n, 1);
  return b;
}

/**
 * The entry count and header length of an encoded map.
 * @param {Buffer} bytes
 * @returns {[number, number]} [entries, header bytes]
 */
function readMapHeader(bytes) {
  if (bytes[0] >= 0x80 && bytes[0] <= 0x8f) return [bytes[0] & 0x0f, 1];
  return bytes[0] === 0xde ? [bytes.readUInt16BE(1), 3] : [bytes.readUInt32BE(1), 5];
}

/**
 * Encode one message as a frame.
 *
 * Returns the 4-byte header, then the payload in one or more parts; write
 * them all, in order. A large `image` is not copied at all: the rest of the
 * map is encoded, and the caller's bytes follow a hand-written bin header as
 * a part of their own. Going through the encoder would cost about twice the
 * image in short-lived buffers per request (it grows its buffer by
 * doubling), which V8 collects lazily: on a 512 MB host that garbage is the
 * Node process's peak. The caller must not modify the image until written.
 *
 * @param {Record<string, unknown>} message a plain object (a MessagePack map)
 * @returns {Buffer[]} [header, ...payload parts]
 */
function encodeFrame(message) {
  if (message === null || typeof message !== 'object' || Array.isArray(message)) {
    throw new TypeError('a frame carries a map: pass a plain object');
  }
  const { image, ...rest } = message;
  let parts;
  if (image instanceof Uint8Array && image.length >= SPLICE_MIN_BYTES) {
    const encoded = encode(rest);
    const head = Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength);
    const [count, headerBytes] = readMapHeader(head);
    const img = Buffer.isBuffer(image) ? image : Buffer.from(image.buffer, image.byteOffset, image.byteLength);
    const prefix = Buffer.concat([mapHeader(count + 1), head.subarray(headerBytes), IMAGE_KEY, binHeader(img.length)]);
    parts = [prefix, img];
  } else {
    const bytes = encode(message);
    parts = [Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)];
  }
  const length = parts.reduce((n, p) => n + p.length, 0);
  if (length > MAX_UINT32) throw new RangeError('message too large for one frame');
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(length, 0);
  return [header, ...parts];
}

/**
 * Encode one message as a single Buffer (header + payload). Convenient for
 * tests and small messages; `encodeFrame` avoids the copy.
 *
 * @param {Record<string, unknown>} message
 * @returns {Buffer}
 */
function encodeFrameBuffer(message) {
  return Buffer.concat(encodeFrame(message));
}

/** @param {number} byte first byte of a MessagePack value */
function isMapMarker(byte) {
  return (byte >= 0x80 && byte <= 0x8f) || byte === 0xde || byte === 0xdf;
}

/**
 * Turn Uint8Array values (MessagePack `bin`) into Buffers without copying,
 * recursively.
 *
 * @param {unknown} value
 * @returns {unknown}
 */
function binToBuffer(value) {
  if (value instanceof Uint8Array) {
    return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  }
  if (Array.isArray(value)) return value.map(binToBuffer);
  if (value !== null && typeof value === 'object') {
    const out = /** @type {Record<string, unknown>} */ ({});
    for (const [k, v] of Object.entries(value)) out[k] = binToBuffer(v);
    return out;
  }
  return value;
}

/**
 * Incremental frame reader for one byte stream (a worker's stdout).
 *
 * Push chunks as they arrive, of any size: a frame may be split across many
 * chunks and one chunk may hold several frames. `onMessage` is called once
 * per complete frame with the decoded map (`bin` values as Buffers).
 *
 * A stream that breaks the protocol (a zero or oversized length, a payload
 * that is not a MessagePack map) calls `onError` once with a FrameError and
 * the reader ignores everything after: a byte stream that lost its place
 * cannot be trusted again. The payload's first byte is checked as soon as it
 * arrives, so garbage is usually caught at once rather than after waiting for
 * a bogus length.
 */
class FrameDecoder {
  /**
   * @param {{onMessage: (msg: Record<string, any>) => void,
   *          onError: (err: FrameError) => void,
   *          maxFrameBytes?: number}} opts
   */
  constructor(opts) {
    this.onMessage = opts.onMessage;
    this.onError = opts.onError;
    this.maxFrameBytes = opts.maxFrameBytes || DEFAULT_MAX_FRAME_BYTES;
    /** @type {Buffer[]} */
    this.chunks = [];
    this.buffered = 0;
    /** payload length of the frame being read, or -1 before its header */
    this.need = -1;
    this.failed = false;
    /** total complete frames read */
    this.frames = 0;
  }

  /** Bytes received and not yet part of a complete frame. */
  get pendingBytes() {
    return this.buffered;
  }

  /** @param {Buffer} chunk */
  push(chunk) {
    if (this.failed || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    /** @type {Record<string, any>[]} */
    const messages = [];
    let error = null;
    try {
      this._drain(messages);
    } catch (err) {
      error = err instanceof FrameError ? err : new FrameError(err instanceof Error ? err.message : String(err), { cause: err });
      this.failed = true;
      this.chunks = [];
      this.buffered = 0;
    }
    // Deliver outside the parser, so that a throwing handler is not mistaken
    // for a bad frame; frames before a bad one are still delivered.
    for (const msg of messages) this.onMessage(msg);
    if (error) this.onError(error);
  }

  /**
   * Take `n` bytes off the front of the buffered chunks (n <= buffered).
   * @param {number} n
   * @returns {Buffer}
   */
  _take(n) {
    const first = this.chunks[0];
    let out;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let copied = 0;
      while (copied < n) {
        const c = this.chunks[0];
        const want = n - copied;
        if (c.length <= want) {
          c.copy(out, copied);
          copied += c.length;
          this.chunks.shift();
        } else {
          c.copy(out, copied, 0, want);
          this.chunks[0] = c.subarray(want);
          copied += want;
        }
      }
    }
    this.buffered -= n;
    return out;
  }

  /** @param {number} i index into the buffered bytes (< buffered) */
  _peek(i) {
    for (const c of this.chunks) {
      if (i < c.length) return c[i];
      i -= c.length;
    }
    return -1;
  }

  /** @param {Record<string, any>[]} out */
  _drain(out) {
    while (!this.failed) {
      if (this.need < 0) {
        if (this.buffered < HEADER_BYTES) return;
        const n = this._take(HEADER_BYTES).readUInt32BE(0);
        if (n === 0) throw new FrameError('bad frame header: length 0');
        if (n > this.maxFrameBytes) {
          throw new FrameError(
            `bad frame header: length ${n} exceeds the client's limit of ${this.maxFrameBytes} bytes ` +
              '(the stream is probably not protocol frames)',
          );
        }
        this.need = n;
      }
      if (this.buffered === 0) return;
      const first = this._peek(0);
      if (!isMapMarker(first)) {
        throw new FrameError(
          `bad frame payload: starts with byte 0x${first.toString(16).padStart(2, '0')}, not a MessagePack map`,
        );
      }
      if (this.buffered < this.need) return;
      const payload = this._take(this.need);
      this.need = -1;
      let msg;
      try {
        msg = decode(payload);
      } catch (err) {
        throw new FrameError(`bad frame payload: ${err && /** @type {Error} */ (err).message}`, { cause: err });
      }
      if (msg === null || typeof msg !== 'object' || Array.isArray(msg) || msg instanceof Uint8Array) {
        throw new FrameError('bad frame payload: not a MessagePack map');
      }
      this.frames += 1;
      out.push(/** @type {Record<string, any>} */ (binToBuffer(msg)));
    }
  }
}

module.exports = {
  HEADER_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  FrameError,
  FrameDecoder,
  encodeFrame,
  encodeFrameBuffer,
  isMapMarker,
};
