import { PeftError } from '@peftjs/core';

/** One file of a zip archive as its central directory describes it, checked against the archive's bytes. */
export interface ZipEntry {
  /** Path inside the archive. */
  readonly name: string;
  /** 0 (stored) or 8 (deflate). */
  readonly method: 0 | 8;
  /** Byte range of the (compressed) data in the archive. */
  readonly dataStart: number;
  readonly dataEnd: number;
  /** Size after decompression, as declared. */
  readonly size: number;
}

/** Deflate cannot expand more than about 1032:1; a larger declared size is a lie. */
const MAX_DEFLATE_RATIO = 1032;

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

function notZip(source: string, why: string): never {
  throw new PeftError('NPZ_INVALID', `${source}: not a readable zip archive (${why})`);
}

function num(view: DataView, at: number, size: 2 | 4 | 8): number {
  if (size === 2) return view.getUint16(at, true);
  if (size === 4) return view.getUint32(at, true);
  return Number(view.getBigUint64(at, true));
}

/** Where the central directory is and how many entries it holds (zip64 records honoured). */
function findDirectory(view: DataView, source: string): { offset: number; size: number; count: number } {
  const length = view.byteLength;
  let eocd = -1;
  for (let at = length - 22; at >= Math.max(0, length - 22 - 0xffff); at--) {
    if (view.getUint32(at, true) === EOCD) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) notZip(source, 'no end-of-central-directory record');
  let count = num(view, eocd + 10, 2);
  let size = num(view, eocd + 12, 4);
  let offset = num(view, eocd + 16, 4);
  if (eocd >= 20 && view.getUint32(eocd - 20, true) === ZIP64_LOCATOR) {
    const record = num(view, eocd - 12, 8);
    if (record + 56 > eocd || view.getUint32(record, true) !== ZIP64_EOCD) {
      notZip(source, 'bad zip64 end-of-central-directory record');
    }
    count = num(view, record + 32, 8);
    size = num(view, record + 40, 8);
    offset = num(view, record + 48, 8);
  }
  if (offset + size > eocd) notZip(source, 'the central directory runs past its end record');
  return { offset, size, count };
}

/** The zip64 extra field (id 1) values that replace 0xFFFFFFFF placeholders, in their fixed order. */
function zip64Values(view: DataView, start: number, end: number, wanted: boolean[]): (number | undefined)[] {
  for (let at = start; at + 4 <= end; ) {
    const id = num(view, at, 2);
    const length = num(view, at + 2, 2);
    if (id === 1) {
      const out: (number | undefined)[] = [];
      let p = at + 4;
      for (const want of wanted) {
        if (want && p + 8 <= at + 4 + length) {
          out.push(num(view, p, 8));
          p += 8;
        } else out.push(undefined);
      }
      return out;
    }
    at += 4 + length;
  }
  return wanted.map(() => undefined);
}

/**
 * Reads a zip archive's central directory and checks it before anything is decompressed: every entry's local
 * header is where the directory says, every data range lies inside the archive and no two selected entries
 * overlap (an archive whose entries all point at one compressed array would otherwise inflate it once per entry),
 * names are unique, sizes are possible (stored: equal; deflate: at most ~1032× the compressed size), and no entry
 * is encrypted or uses another compression. `select` picks the entries to check and return.
 */
export function readZipDirectory(
  bytes: Uint8Array,
  source: string,
  select: (name: string) => boolean,
): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 22) notZip(source, `${bytes.length} bytes is too short`);
  const directory = findDirectory(view, source);
  const entries: (ZipEntry & { headerStart: number })[] = [];
  const names = new Set<string>();
  let at = directory.offset;
  for (let i = 0; i < directory.count; i++) {
    if (at + 46 > directory.offset + directory.size || view.getUint32(at, true) !== CENTRAL) {
      notZip(source, `central directory entry ${i} is malformed`);
    }
    const flags = num(view, at + 8, 2);
    const method = num(view, at + 10, 2);
    const nameLength = num(view, at + 28, 2);
    const extraLength = num(view, at + 30, 2);
    const commentLength = num(view, at + 32, 2);
    const nameBytes = bytes.subarray(at + 46, at + 46 + nameLength);
    const name = new TextDecoder(flags & 0x800 ? 'utf-8' : 'latin1').decode(nameBytes);
    const raw = [num(view, at + 24, 4), num(view, at + 20, 4), num(view, at + 42, 4)];
    const big = zip64Values(
      view,
      at + 46 + nameLength,
      at + 46 + nameLength + extraLength,
      raw.map((v) => v === 0xffffffff),
    );
    const [size, compressedSize, headerStart] = raw.map((v, k) => big[k] ?? v) as [number, number, number];
    at += 46 + nameLength + extraLength + commentLength;
    if (!select(name)) continue;
    const entry = `${source}:${name}`;
    if (names.has(name)) throw new PeftError('NPZ_INVALID', `${entry}: the archive holds this name twice`);
    names.add(name);
    if (flags & 1) throw new PeftError('NPZ_INVALID', `${entry}: encrypted entries are not read`);
    if (method !== 0 && method !== 8) {
      throw new PeftError(
        'NPZ_INVALID',
        `${entry}: compression method ${method} is not supported (stored or deflate only)`,
      );
    }
    if (headerStart + 30 > directory.offset || view.getUint32(headerStart, true) !== LOCAL) {
      throw new PeftError('NPZ_INVALID', `${entry}: no local file header at offset ${headerStart}`);
    }
    const dataStart = headerStart + 30 + num(view, headerStart + 26, 2) + num(view, headerStart + 28, 2);
    const dataEnd = dataStart + compressedSize;
    if (dataEnd > directory.offset) {
      throw new PeftError('NPZ_INVALID', `${entry}: its data runs past the start of the central directory`);
    }
    const possible =
      method === 0 ? size === compressedSize : size <= compressedSize * MAX_DEFLATE_RATIO + 1024;
    if (!possible) {
      throw new PeftError(
        'NPZ_INVALID',
        `${entry}: declares ${size} bytes from ${compressedSize} ${method === 0 ? 'stored' : 'compressed'} bytes, which is impossible`,
      );
    }
    entries.push({ name, method, dataStart, dataEnd, size, headerStart });
  }
  const byOffset = [...entries].sort((a, b) => a.headerStart - b.headerStart);
  for (let k = 1; k < byOffset.length; k++) {
    const previous = byOffset[k - 1] as ZipEntry;
    const next = byOffset[k] as ZipEntry & { headerStart: number };
    if (next.headerStart < previous.dataEnd) {
      throw new PeftError(
        'NPZ_INVALID',
        `${source}: entries "${previous.name}" and "${next.name}" overlap in the archive (they share compressed ` +
          'data, so reading both would inflate it twice); refusing the archive',
      );
    }
  }
  return entries.map(({ headerStart: _, ...entry }) => entry);
}
