// The project's model for Python engines (vLLM): a small Llama in Hugging Face's layout (config.json,
// model.safetensors in bfloat16, a byte-level BPE tokenizer.json), written from a fixed seed with no
// download. Like the GGUF model it computes nonsense, deterministically, with the engine's real
// kernels; its 2 layers and 2 KV heads split over 2 nodes by tensor or by pipeline.
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { cacheDir } from '../util/paths.js';
import { seededNormals } from '../util/random.js';
import { withLock } from '../util/lock.js';
import type { Progress } from '../util/progress.js';

export const TINY_HF = {
  name: 'tandem-tiny-hf',
  seed: 20261124,
  hidden: 128,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  intermediate: 256,
  maxPositions: 2048,
  rmsEps: 1e-5,
  ropeTheta: 10000,
  /** Every byte, then <s> and </s>. */
  vocab: 258,
} as const;

const WRITER_VERSION = 1;
const BOS = '<s>';
const EOS = '</s>';

/** The model's folder in the cache, made on first use. */
export async function ensureTinyHf(progress: Progress): Promise<string> {
  const key = createHash('sha256')
    .update(JSON.stringify({ ...TINY_HF, WRITER_VERSION }))
    .digest('hex')
    .slice(0, 12);
  const root = join(cacheDir(), 'models');
  const dir = join(root, `${TINY_HF.name}-${key}`);
  if (existsSync(join(dir, 'config.json'))) return dir;
  return withLock(root, async () => {
    if (existsSync(join(dir, 'config.json'))) return dir;
    progress(`making the project's model ${TINY_HF.name} (Hugging Face layout, ${TINY_HF.layers} layers) into ${dir}`);
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    writeTinyHf(tmp);
    renameSync(tmp, dir);
    return dir;
  });
}

export function writeTinyHf(dir: string): void {
  const c = TINY_HF;
  const json = (name: string, value: unknown) => writeFileSync(join(dir, name), `${JSON.stringify(value, null, 2)}\n`);
  json('config.json', {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: c.hidden,
    intermediate_size: c.intermediate,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    num_key_value_heads: c.kvHeads,
    max_position_embeddings: c.maxPositions,
    rms_norm_eps: c.rmsEps,
    rope_theta: c.ropeTheta,
    hidden_act: 'silu',
    vocab_size: c.vocab,
    bos_token_id: 256,
    eos_token_id: 257,
    tie_word_embeddings: false,
    torch_dtype: 'bfloat16',
  });
  json('generation_config.json', { bos_token_id: 256, eos_token_id: 257 });
  json('tokenizer.json', byteLevelTokenizer());
  json('tokenizer_config.json', {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: BOS,
    eos_token: EOS,
    model_max_length: c.maxPositions,
    chat_template:
      "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}",
  });

  const tensors: [string, number[], Init][] = [];
  const proj = (nIn: number): Init => ({ std: 1 / Math.sqrt(nIn) });
  const headDim = c.hidden / c.heads;
  tensors.push(['model.embed_tokens.weight', [c.vocab, c.hidden], { std: 1 }]);
  for (let i = 0; i < c.layers; i++) {
    const l = `model.layers.${i}`;
    tensors.push(
      [`${l}.input_layernorm.weight`, [c.hidden], { constant: 1 }],
      [`${l}.self_attn.q_proj.weight`, [c.hidden, c.hidden], proj(c.hidden)],
      [`${l}.self_attn.k_proj.weight`, [c.kvHeads * headDim, c.hidden], proj(c.hidden)],
      [`${l}.self_attn.v_proj.weight`, [c.kvHeads * headDim, c.hidden], proj(c.hidden)],
      [`${l}.self_attn.o_proj.weight`, [c.hidden, c.hidden], proj(c.hidden)],
      [`${l}.post_attention_layernorm.weight`, [c.hidden], { constant: 1 }],
      [`${l}.mlp.gate_proj.weight`, [c.intermediate, c.hidden], proj(c.hidden)],
      [`${l}.mlp.up_proj.weight`, [c.intermediate, c.hidden], proj(c.hidden)],
      [`${l}.mlp.down_proj.weight`, [c.hidden, c.intermediate], proj(c.intermediate)],
    );
  }
  tensors.push(['model.norm.weight', [c.hidden], { constant: 1 }]);
  // Untied and wide, as in the GGUF model: peaky logits keep greedy decoding far from ties.
  tensors.push(['lm_head.weight', [c.vocab, c.hidden], { std: 0.5 }]);
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
}

type Init = { std: number } | { constant: number };

/** safetensors: an 8-byte header length, a JSON header of offsets, then the tensors' bytes. */
function writeSafetensors(path: string, tensors: [string, number[], Init][]): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const [name, shape, init] of tensors) {
    const data = bf16(values(name, shape, init));
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + data.length] };
    chunks.push(data);
    offset += data.length;
  }
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8); // the data starts 8-byte aligned
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  writeFileSync(path, Buffer.concat([size, Buffer.from(text), ...chunks]));
}

/** Gaussian values seeded by the model seed and the tensor's name (or a constant). */
function values(name: string, shape: number[], init: Init): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  if ('constant' in init) return new Float32Array(n).fill(init.constant);
  return seededNormals(`${TINY_HF.seed}:${name}`, n, init.std);
}

/** float32 → bfloat16 (the upper 16 bits, rounded to nearest even). */
function bf16(x: Float32Array): Buffer {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  const out = Buffer.alloc(x.length * 2);
  for (let i = 0; i < x.length; i++) {
    const b = bits[i]!;
    out.writeUInt16LE(((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff, i * 2);
  }
  return out;
}

/** A byte-level BPE with no merges: each byte is a token (GPT-2's byte-to-character map). */
function byteLevelTokenizer(): unknown {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const vocab: Record<string, number> = {};
  let extra = 0;
  for (let b = 0; b < 256; b++) vocab[String.fromCodePoint(printable(b) ? b : 256 + extra++)] = b;
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(256, BOS), special(257, EOS)],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
}
