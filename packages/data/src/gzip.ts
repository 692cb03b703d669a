import { Gunzip } from 'fflate';

/** Compressed bytes fed to the inflater at a time: deflate expands at most ~1032×, so one output chunk ≤ 8.1 MiB. */
const INPUT_CHUNK = 8 * 1024;

/** Whether `bytes` start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (IEEE, as gzip, zip and PNG use it) of `data`, continuing from `crc` (0 to start). */
export function crc32(crc: number, data: Uint8Array): number {
  let c = ~crc;
  for (let i = 0; i < data.length; i++)
    c = (CRC_TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

/**
 * Decompresses gzip data (one or more members) without ever holding more than the size its content declares.
 * `declaredSize` sees the output so far until it can tell the total size (`null`: show me more); it may throw,
 * for instance when the declared size is over a limit. The output buffer is allocated once, at that size, and
 * decompression stops with an error as soon as the data would run past it. Each member's CRC-32 and length are
 * checked. The result may be shorter than declared (the caller reports that).
 */
export function gunzipDeclared(
  bytes: Uint8Array,
  declaredSize: (head: Uint8Array) => number | null,
): Uint8Array {
  let out: Uint8Array | null = null;
  let head = new Uint8Array(0);
  let length = 0;
  let crc = 0;
  let memberLength = 0;
  const checkMember = (trailerEnd: number): void => {
    if (trailerEnd < 8) throw new Error('gzip member has no trailer');
    const view = new DataView(bytes.buffer, bytes.byteOffset + trailerEnd - 8, 8);
    if (view.getUint32(0, true) !== crc || view.getUint32(4, true) !== memberLength % 2 ** 32) {
      throw new Error('CRC-32 or length check failed (the data is corrupt)');
    }
    crc = 0;
    memberLength = 0;
  };
  const accept = (chunk: Uint8Array): void => {
    crc = crc32(crc, chunk);
    memberLength += chunk.length;
    if (out === null) {
      const grown = new Uint8Array(head.length + chunk.length);
      grown.set(head);
      grown.set(chunk, head.length);
      head = grown;
      const total = declaredSize(head);
      if (total === null) return;
      if (head.length > total)
        throw new Error(`decompresses to more than the ${total} bytes its header declares`);
      out = new Uint8Array(total);
      out.set(head);
      length = head.length;
      head = new Uint8Array(0);
      return;
    }
    if (length + chunk.length > out.length) {
      throw new Error(`decompresses to more than the ${out.length} bytes its header declares`);
    }
    out.set(chunk, length);
    length += chunk.length;
  };
  const inflater = new Gunzip((chunk) => {
    if (chunk.length > 0) accept(chunk);
  });
  inflater.onmember = (offset) => checkMember(offset);
  for (let at = 0; at < bytes.length; at += INPUT_CHUNK) {
    inflater.push(bytes.subarray(at, at + INPUT_CHUNK), at + INPUT_CHUNK >= bytes.length);
  }
  checkMember(bytes.length);
  return out === null ? head : (out as Uint8Array).subarray(0, length);
}
