// GGUF v3 reader and writer (the file format of llama.cpp models).
// Layout: magic "GGUF", version, tensor count, KV count, KV pairs, tensor infos, padding to
// `general.alignment` (default 32), then tensor data, each tensor aligned the same way.
// Spec: ggml/docs/gguf.md in the llama.cpp source.
import { closeSync, openSync, readSync, writeSync } from 'node:fs';

export enum GgufType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** ggml tensor types this project reads or writes (ids from ggml.h). */
export enum GgmlType {
  F32 = 0,
  F16 = 1,
}

export type GgufScalar = number | bigint | boolean | string;
/** A typed value: GGUF keeps the exact type, so a round trip must too. */
export type GgufValue =
  | { type: Exclude<GgufType, GgufType.ARRAY>; value: GgufScalar }
  | { type: GgufType.ARRAY; itemType: Exclude<GgufType, GgufType.ARRAY>; value: GgufScalar[] };

export interface GgufTensorInfo {
  name: string;
  dims: number[];
  type: number;
  offset: bigint;
}
export interface GgufHeader {
  version: number;
  kv: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  /** Absolute file offset where tensor data starts. */
  dataOffset: number;
}

const MAGIC = 0x46554747; // "GGUF" little-endian
const DEFAULT_ALIGNMENT = 32;

/** Reads only the header (metadata and tensor infos), never the tensor data. */
export function readGgufHeader(path: string): GgufHeader {
  const fd = openSync(path, 'r');
  try {
    const reader = new FileReader(fd);
    if (reader.u32() !== MAGIC) throw new Error(`${path}: not a GGUF file (bad magic)`);
    const version = reader.u32();
    if (version < 2 || version > 3) throw new Error(`${path}: unsupported GGUF version ${version}`);
    const tensorCount = Number(reader.u64());
    const kvCount = Number(reader.u64());
    const kv = new Map<string, GgufValue>();
    for (let i = 0; i < kvCount; i++) {
      const key = reader.string();
      const type = reader.u32() as GgufType;
      if (type === GgufType.ARRAY) {
        const itemType = reader.u32() as Exclude<GgufType, GgufType.ARRAY>;
        const n = Number(reader.u64());
        const value: GgufScalar[] = new Array(n);
        for (let j = 0; j < n; j++) value[j] = reader.scalar(itemType);
        kv.set(key, { type, itemType, value });
      } else {
        kv.set(key, { type, value: reader.scalar(type) });
      }
    }
    const tensors: GgufTensorInfo[] = [];
    for (let i = 0; i < tensorCount; i++) {
      const name = reader.string();
      const nDims = reader.u32();
      const dims: number[] = [];
      for (let d = 0; d < nDims; d++) dims.push(Number(reader.u64()));
      tensors.push({ name, dims, type: reader.u32(), offset: reader.u64() });
    }
    const alignment = Number(kv.get('general.alignment')?.value ?? DEFAULT_ALIGNMENT);
    return { version, kv, tensors, dataOffset: alignUp(reader.position, alignment) };
  } finally {
    closeSync(fd);
  }
}

export interface GgufTensorToWrite {
  name: string;
  /** ggml order: dims[0] is the contiguous (row) dimension. */
  dims: number[];
  type: GgmlType;
  /** Called once, while writing, so large tensors are never all in memory at once. */
  data: () => Uint8Array;
}

/** Writes a GGUF v3 file; tensors are streamed in order. */
export function writeGguf(path: string, kv: Map<string, GgufValue>, tensors: GgufTensorToWrite[]): void {
  const alignment = Number(kv.get('general.alignment')?.value ?? DEFAULT_ALIGNMENT);
  const head = new BufferWriter();
  head.u32(MAGIC);
  head.u32(3);
  head.u64(BigInt(tensors.length));
  head.u64(BigInt(kv.size));
  for (const [key, v] of kv) {
    head.string(key);
    head.u32(v.type);
    if (v.type === GgufType.ARRAY) {
      head.u32(v.itemType);
      head.u64(BigInt(v.value.length));
      for (const item of v.value) head.scalar(v.itemType, item);
    } else {
      head.scalar(v.type, v.value);
    }
  }
  let offset = 0;
  for (const t of tensors) {
    head.string(t.name);
    head.u32(t.dims.length);
    for (const d of t.dims) head.u64(BigInt(d));
    head.u32(t.type);
    head.u64(BigInt(offset));
    offset = alignUp(offset + tensorBytes(t.dims, t.type), alignment);
  }
  const fd = openSync(path, 'w');
  try {
    const header = head.bytes();
    writeAll(fd, header);
    writeAll(fd, new Uint8Array(alignUp(header.byteLength, alignment) - header.byteLength));
    for (const t of tensors) {
      const bytes = t.data();
      const expected = tensorBytes(t.dims, t.type);
      if (bytes.byteLength !== expected) {
        throw new Error(`tensor ${t.name}: ${bytes.byteLength} bytes of data, its shape needs ${expected}`);
      }
      writeAll(fd, bytes);
      writeAll(fd, new Uint8Array(alignUp(expected, alignment) - expected));
    }
  } finally {
    closeSync(fd);
  }
}

export function tensorBytes(dims: number[], type: GgmlType): number {
  const n = dims.reduce((a, b) => a * b, 1);
  switch (type) {
    case GgmlType.F32:
      return n * 4;
    case GgmlType.F16:
      return n * 2;
  }
}

function alignUp(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done);
}

/** Buffered sequential reader over a file descriptor. */
class FileReader {
  private buf = Buffer.alloc(1 << 20);
  private start = 0; // file offset of buf[0]
  private len = 0;
  position = 0;

  constructor(private readonly fd: number) {}

  private need(n: number): Buffer {
    if (this.position + n > this.start + this.len) {
      if (n > this.buf.length) this.buf = Buffer.alloc(n * 2);
      this.start = this.position;
      this.len = readSync(this.fd, this.buf, 0, this.buf.length, this.start);
      if (this.len < n) throw new Error('GGUF file is truncated');
    }
    const at = this.position - this.start;
    this.position += n;
    return this.buf.subarray(at, at + n);
  }

  u32(): number {
    return this.need(4).readUInt32LE(0);
  }
  u64(): bigint {
    return this.need(8).readBigUInt64LE(0);
  }
  string(): string {
    const n = Number(this.u64());
    return this.need(n).toString('utf8');
  }
  scalar(type: GgufType): GgufScalar {
    switch (type) {
      case GgufType.UINT8:
        return this.need(1).readUInt8(0);
      case GgufType.INT8:
        return this.need(1).readInt8(0);
      case GgufType.UINT16:
        return this.need(2).readUInt16LE(0);
      case GgufType.INT16:
        return this.need(2).readInt16LE(0);
      case GgufType.UINT32:
        return this.need(4).readUInt32LE(0);
      case GgufType.INT32:
        return this.need(4).readInt32LE(0);
      case GgufType.FLOAT32:
        return this.need(4).readFloatLE(0);
      case GgufType.BOOL:
        return this.need(1).readUInt8(0) !== 0;
      case GgufType.STRING:
        return this.string();
      case GgufType.UINT64:
        return this.need(8).readBigUInt64LE(0);
      case GgufType.INT64:
        return this.need(8).readBigInt64LE(0);
      case GgufType.FLOAT64:
        return this.need(8).readDoubleLE(0);
      default:
        throw new Error(`GGUF value type ${type} is not a scalar`);
    }
  }
}

/** Growable little-endian byte buffer for the header. */
class BufferWriter {
  private buf = Buffer.alloc(1 << 16);
  private len = 0;

  /** Reserves n bytes at the end and returns the (possibly reallocated) buffer to write them in. */
  private at(n: number): Buffer {
    if (this.len + n > this.buf.length) {
      const next = Buffer.alloc(Math.max(this.buf.length * 2, this.len + n));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    this.len += n;
    return this.buf;
  }

  bytes(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
  u32(v: number): void {
    this.at(4).writeUInt32LE(v, this.len - 4);
  }
  u64(v: bigint): void {
    this.at(8).writeBigUInt64LE(v, this.len - 8);
  }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(BigInt(b.length));
    b.copy(this.at(b.length), this.len - b.length);
  }
  scalar(type: GgufType, v: GgufScalar): void {
    switch (type) {
      case GgufType.UINT8:
        this.at(1).writeUInt8(Number(v), this.len - 1);
        break;
      case GgufType.INT8:
        this.at(1).writeInt8(Number(v), this.len - 1);
        break;
      case GgufType.UINT16:
        this.at(2).writeUInt16LE(Number(v), this.len - 2);
        break;
      case GgufType.INT16:
        this.at(2).writeInt16LE(Number(v), this.len - 2);
        break;
      case GgufType.UINT32:
        this.at(4).writeUInt32LE(Number(v), this.len - 4);
        break;
      case GgufType.INT32:
        this.at(4).writeInt32LE(Number(v), this.len - 4);
        break;
      case GgufType.FLOAT32:
        this.at(4).writeFloatLE(Number(v), this.len - 4);
        break;
      case GgufType.BOOL:
        this.at(1).writeUInt8(v ? 1 : 0, this.len - 1);
        break;
      case GgufType.STRING:
        this.string(String(v));
        break;
      case GgufType.UINT64:
        this.at(8).writeBigUInt64LE(BigInt(v), this.len - 8);
        break;
      case GgufType.INT64:
        this.at(8).writeBigInt64LE(BigInt(v), this.len - 8);
        break;
      case GgufType.FLOAT64:
        this.at(8).writeDoubleLE(Number(v), this.len - 8);
        break;
      default:
        throw new Error(`GGUF value type ${type} is not a scalar`);
    }
  }
}
