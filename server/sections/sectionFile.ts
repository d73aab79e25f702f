import fs from 'node:fs/promises';
import type { Section, SectionDialect } from '../wire.js';

/**
 * A run's sections beside its log, so a log with any number of them is served a page at a time
 * without holding them: `<run>.sections` holds a header and one fixed 64-byte record per section
 * (record i at 64 × i, so a page is one positional read), `<run>.section-names` the names, step
 * and key of each as a JSON array, appended in id order (a page's names are one read too). A
 * section that closes or unfolds has its record written again in place; names never change.
 */
export const RECORD_BYTES = 64;
const MAGIC = 'RHSECT1\n';
const DIALECTS: readonly SectionDialect[] = ['github', 'gitlab', 'buildkite'];
const COLLAPSED = 1;
const MUTED = 2;
const CLOSED = 4;
const HAS_START = 8;
const HAS_END = 16;

export interface SectionFiles {
  records: string;
  names: string;
}

export interface SectionHeader {
  /** sections written */
  count: number;
  /** bytes of the log indexed */
  indexed: number;
  /** the whole log of a finished run is indexed */
  complete: boolean;
  namesBytes: number;
}

function encodeHeader(header: SectionHeader): Buffer {
  const bytes = Buffer.alloc(RECORD_BYTES);
  bytes.write(MAGIC, 0, 'latin1');
  bytes.writeDoubleLE(header.indexed, 8);
  bytes.writeUInt8(header.complete ? 1 : 0, 16);
  bytes.writeUInt32LE(header.count, 20);
  bytes.writeDoubleLE(header.namesBytes, 24);
  return bytes;
}

function decodeHeader(bytes: Buffer): SectionHeader | null {
  if (bytes.length < RECORD_BYTES || bytes.toString('latin1', 0, 8) !== MAGIC) return null;
  return { indexed: bytes.readDoubleLE(8), complete: bytes.readUInt8(16) === 1, count: bytes.readUInt32LE(20), namesBytes: bytes.readDoubleLE(24) };
}

function encodeRecord(section: Section, nameAt: number, nameLength: number, into: Buffer, at: number): void {
  into.writeUInt32LE(section.parent ?? 0, at);
  into.writeUInt16LE(section.depth, at + 4);
  into.writeUInt8(DIALECTS.indexOf(section.dialect), at + 6);
  const flags = (section.collapsed ? COLLAPSED : 0) | (section.muted ? MUTED : 0) | (section.end !== null ? CLOSED : 0) | (section.started_at !== null ? HAS_START : 0) | (section.ended_at !== null ? HAS_END : 0);
  into.writeUInt8(flags, at + 7);
  into.writeDoubleLE(section.start, at + 8);
  into.writeDoubleLE(section.header_end, at + 16);
  into.writeDoubleLE(section.end ?? 0, at + 24);
  into.writeDoubleLE(section.started_at ?? 0, at + 32);
  into.writeDoubleLE(section.ended_at ?? 0, at + 40);
  into.writeDoubleLE(nameAt, at + 48);
  into.writeUInt32LE(nameLength, at + 56);
}

function decodeRecord(id: number, bytes: Buffer, at: number, names: Buffer, namesFrom: number): Section {
  const flags = bytes.readUInt8(at + 7);
  const nameAt = bytes.readDoubleLE(at + 48) - namesFrom;
  const [name, step, key] = JSON.parse(names.toString('utf8', nameAt, nameAt + bytes.readUInt32LE(at + 56))) as [string, string | null, string | null];
  const parent = bytes.readUInt32LE(at);
  return {
    id,
    parent: parent === 0 ? null : parent,
    depth: bytes.readUInt16LE(at + 4),
    step,
    name,
    dialect: DIALECTS[bytes.readUInt8(at + 6)] ?? 'github',
    key,
    start: bytes.readDoubleLE(at + 8),
    header_end: bytes.readDoubleLE(at + 16),
    end: flags & CLOSED ? bytes.readDoubleLE(at + 24) : null,
    started_at: flags & HAS_START ? bytes.readDoubleLE(at + 32) : null,
    ended_at: flags & HAS_END ? bytes.readDoubleLE(at + 40) : null,
    collapsed: (flags & COLLAPSED) !== 0,
    muted: (flags & MUTED) !== 0,
  };
}

/** Writes a run's section files from the start; memory holds only the sections of one batch. */
export class SectionWriter {
  private header: SectionHeader = { count: 0, indexed: 0, complete: false, namesBytes: 0 };

  private constructor(private readonly records: fs.FileHandle, private readonly names: fs.FileHandle) {}

  /** Starts both files over (an index is always built from the log's start). */
  static async create(files: SectionFiles): Promise<SectionWriter> {
    const records = await fs.open(files.records, 'w+');
    const names = await fs.open(files.names, 'w+').catch(async (error: unknown) => {
      await records.close();
      throw error;
    });
    const writer = new SectionWriter(records, names);
    await records.write(encodeHeader(writer.header), 0, RECORD_BYTES, 0);
    return writer;
  }

  /**
   * Writes the sections changed by a batch (their latest states; new ones follow the last id
   * written, in order), then the header saying how far the log is indexed: a reader never sees a
   * count whose records or names are not written yet.
   */
  async write(changed: readonly Section[], indexed: number, complete: boolean): Promise<void> {
    const fresh = changed.filter((section) => section.id > this.header.count).sort((a, b) => a.id - b.id);
    const older = changed.filter((section) => section.id <= this.header.count);
    if (fresh.length > 0) {
      const texts = fresh.map((section) => Buffer.from(JSON.stringify([section.name, section.step, section.key])));
      const records = Buffer.alloc(fresh.length * RECORD_BYTES);
      let at = this.header.namesBytes;
      fresh.forEach((section, index) => {
        encodeRecord(section, at, texts[index].length, records, index * RECORD_BYTES);
        at += texts[index].length;
      });
      const joined = Buffer.concat(texts);
      await this.names.write(joined, 0, joined.length, this.header.namesBytes);
      await this.records.write(records, 0, records.length, fresh[0].id * RECORD_BYTES);
      this.header = { ...this.header, namesBytes: at, count: fresh[fresh.length - 1].id };
    }
    // A section written before changes only in its flags, end and end time (bytes 7 to 48): its
    // name's place stays as written, so it need not be known here.
    const record = Buffer.alloc(RECORD_BYTES);
    for (const section of older) {
      encodeRecord(section, 0, 0, record, 0);
      await this.records.write(record, 7, 41, section.id * RECORD_BYTES + 7);
    }
    this.header = { ...this.header, indexed, complete };
    await this.records.write(encodeHeader(this.header), 0, RECORD_BYTES, 0);
  }

  async close(): Promise<void> {
    await Promise.all([this.records.close(), this.names.close()]);
  }
}

/** The header of a run's section files; null when there are none (not indexed yet, or damaged). */
export async function readSectionHeader(files: SectionFiles): Promise<SectionHeader | null> {
  const handle = await fs.open(files.records, 'r').catch(() => null);
  if (!handle) return null;
  try {
    const bytes = Buffer.alloc(RECORD_BYTES);
    const { bytesRead } = await handle.read(bytes, 0, RECORD_BYTES, 0);
    return decodeHeader(bytes.subarray(0, bytesRead));
  } finally {
    await handle.close();
  }
}

/** Sections after id `after`, at most `limit`: two positional reads whatever the number of sections. */
export async function readSectionPage(files: SectionFiles, after: number, limit: number): Promise<{ header: SectionHeader; sections: Section[] } | null> {
  const [records, names] = await Promise.all([fs.open(files.records, 'r').catch(() => null), fs.open(files.names, 'r').catch(() => null)]);
  try {
    if (!records || !names) return null;
    const head = Buffer.alloc(RECORD_BYTES);
    await records.read(head, 0, RECORD_BYTES, 0);
    const header = decodeHeader(head);
    if (!header) return null;
    const count = Math.max(0, Math.min(limit, header.count - after));
    if (count === 0) return { header, sections: [] };
    const bytes = Buffer.alloc(count * RECORD_BYTES);
    await records.read(bytes, 0, bytes.length, (after + 1) * RECORD_BYTES);
    const first = bytes.readDoubleLE(48);
    const last = (count - 1) * RECORD_BYTES;
    const namesEnd = bytes.readDoubleLE(last + 48) + bytes.readUInt32LE(last + 56);
    const text = Buffer.alloc(namesEnd - first);
    await names.read(text, 0, text.length, first);
    const sections: Section[] = [];
    for (let index = 0; index < count; index++) sections.push(decodeRecord(after + 1 + index, bytes, index * RECORD_BYTES, text, first));
    return { header, sections };
  } finally {
    await Promise.all([records?.close(), names?.close()]);
  }
}

/**
 * The id before the first section starting at or after byte `from` (0: the first). Sections are
 * numbered as they open, in the log's order, so their starts grow with their ids: a binary search
 * of one 8-byte read per step (17 for 100 000 sections), whatever the number of sections.
 */
export async function sectionIdBefore(files: SectionFiles, from: number): Promise<number> {
  const handle = await fs.open(files.records, 'r').catch(() => null);
  if (!handle) return 0;
  try {
    const head = Buffer.alloc(RECORD_BYTES);
    await handle.read(head, 0, RECORD_BYTES, 0);
    const header = decodeHeader(head);
    if (!header) return 0;
    const start = Buffer.alloc(8);
    let low = 1;
    let high = header.count + 1; // the first id whose start is at or after `from` is in [low, high]
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      await handle.read(start, 0, 8, middle * RECORD_BYTES + 8);
      if (start.readDoubleLE(0) >= from) high = middle;
      else low = middle + 1;
    }
    return low - 1;
  } finally {
    await handle.close();
  }
}
