// A small seeded generator (mulberry32): the same numbers from the same seed, on every machine.
import { createHash } from 'node:crypto';
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` normal values (mean 0, deviation `std`), seeded by a text: Box–Muller over mulberry32. */
export function seededNormals(seedText: string, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  const next = mulberry32(createHash('sha256').update(seedText).digest().readUInt32LE(0));
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - next())) * std;
    const theta = 2 * Math.PI * next();
    out[i] = r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}
