'use strict';

/**
 * Image type from the first bytes of a file (for fallback results, which
 * carry the caller's own bytes, and for the Express example's MIME check).
 *
 * @module pyworker/mime
 */

/**
 * @param {Uint8Array} b
 * @returns {'image/jpeg'|'image/png'|'image/webp'|'image/bmp'|'image/gif'|'image/tiff'|null}
 */
function sniffMime(b) {
  if (!b || b.length < 4) return null;
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return 'image/png';
  if (b.length >= 12 && b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 &&
      b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return 'image/webp';
  if (b[0] === 0x42 && b[1] === 0x4d) return 'image/bmp';
  if (b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) return 'image/gif';
  if ((b[0] === 0x49 && b[1] === 0x49 && b[2] === 0x2a) || (b[0] === 0x4d && b[1] === 0x4d && b[3] === 0x2a)) return 'image/tiff';
  return null;
}

module.exports = { sniffMime };
