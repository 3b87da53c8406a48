// Bytes per parameter of weight formats, and bytes per element of KV-cache formats.

export interface WeightFormat {
  name: string;
  /** Bytes per parameter of the quantized linear layers. */
  linear: number;
  /** Bytes per parameter of embeddings, lm_head and norms (AWQ/GPTQ leave them in 16 bits). */
  other: number;
  /** AWQ/GPTQ quantize in groups along the input dimension: each shard's rows must hold whole groups. */
  groupSize?: number;
}

const int4 = (name: string): WeightFormat => ({ name, linear: (4 + 16 / 128 + 4 / 128) / 8, other: 2, groupSize: 128 });

/** GGUF quantization types: average bits per weight of their blocks (ggml's block sizes). */
const GGUF_BITS: Record<string, number> = {
  f32: 32,
  f16: 16,
  bf16: 16,
  q8_0: 8.5,
  q6_k: 6.5625,
  q5_k_m: 5.69,
  q5_0: 5.5,
  q4_k_m: 4.85,
  q4_k_s: 4.58,
  q4_0: 4.5,
  q3_k_m: 3.91,
  q2_k: 2.63,
};

export function weightFormat(dtype: string): WeightFormat {
  const d = dtype.toLowerCase();
  switch (d) {
    case 'bf16':
    case 'fp16':
    case 'float16':
    case 'bfloat16':
    case 'auto':
      return { name: d === 'auto' ? 'bf16' : d, linear: 2, other: 2 };
    case 'fp32':
    case 'float32':
      return { name: 'fp32', linear: 4, other: 4 };
    case 'fp8':
      return { name: 'fp8', linear: 1, other: 2 };
    case 'int8':
    case 'w8a8':
      return { name: 'int8', linear: 1, other: 2 };
    case 'awq':
    case 'int4-awq':
      return int4('awq');
    case 'gptq':
    case 'int4-gptq':
    case 'int4':
      return int4('gptq');
  }
  const gguf = d.replace(/^gguf[-:]?/, '');
  const bits = GGUF_BITS[gguf];
  if (bits !== undefined) return { name: `gguf-${gguf}`, linear: bits / 8, other: bits / 8 };
  throw new Error(
    `unknown --dtype "${dtype}": use bf16, fp16, fp8, int8, awq, gptq or a GGUF type (${Object.keys(GGUF_BITS).join(', ')})`,
  );
}

/** KV-cache element size: `auto` follows the activations (16-bit). */
export function kvBytes(kvDtype: string): number {
  switch (kvDtype.toLowerCase()) {
    case 'auto':
    case 'bf16':
    case 'fp16':
      return 2;
    case 'fp8':
    case 'fp8_e4m3':
    case 'fp8_e5m2':
      return 1;
    case 'fp32':
      return 4;
  }
  throw new Error(`unknown --kv-dtype "${kvDtype}": use auto, bf16, fp16 or fp8`);
}
