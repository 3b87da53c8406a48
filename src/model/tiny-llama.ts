// The project's own model: a small Llama-architecture GGUF with weights from a fixed seed and a
// real tokenizer (the vocab-only GGUF that llama.cpp's source ships). It computes nonsense, but it
// computes it with real llama.cpp kernels, deterministically, and splits over 2–4 nodes by layer.
import { existsSync, mkdirSync, renameSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { cacheDir } from '../util/paths.js';
import { seededNormals } from '../util/random.js';
import { withLock } from '../util/lock.js';
import type { Progress } from '../util/progress.js';
import { GgmlType, GgufType, readGgufHeader, writeGguf, type GgufTensorToWrite, type GgufValue } from './gguf.js';

export const TINY_LLAMA = {
  name: 'tandem-tiny-llama',
  seed: 20261124,
  vocabFile: 'models/ggml-vocab-llama-spm.gguf',
  contextLength: 4096,
  embedding: 256,
  layers: 12,
  heads: 8,
  kvHeads: 4,
  feedForward: 768,
  rmsEps: 1e-5,
  ropeBase: 10000,
  // Llama 2's chat format, which its SentencePiece vocabulary was made for: without a template
  // llama.cpp falls back to ChatML, whose markers this vocabulary lacks (JSON mode then fails).
  chatTemplate:
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}" +
    "{{ '<<SYS>>\\n' + message['content'] + '\\n<</SYS>>\\n\\n' }}{% elif message['role'] == 'user' %}" +
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}" +
    "{{ ' ' + message['content'] + ' ' + eos_token }}{% endif %}{% endfor %}",
} as const;

/** Bumped when the writer's output changes, so cached models are remade. */
const WRITER_VERSION = 1;

/** Path of the model in the cache, made on first use. */
export async function ensureTinyLlama(llamaSourceDir: string, progress: Progress): Promise<string> {
  const key = createHash('sha256')
    .update(JSON.stringify({ ...TINY_LLAMA, WRITER_VERSION }))
    .digest('hex')
    .slice(0, 12);
  const dir = join(cacheDir(), 'models');
  const path = join(dir, `${TINY_LLAMA.name}-${key}.gguf`);
  if (existsSync(path)) return path;
  return withLock(dir, async () => {
    if (existsSync(path)) return path;
    mkdirSync(dir, { recursive: true });
    progress(`making the project's model ${TINY_LLAMA.name} (${TINY_LLAMA.layers} layers) into ${path}`);
    const tmp = `${path}.tmp-${process.pid}`;
    writeTinyLlama(tmp, join(llamaSourceDir, TINY_LLAMA.vocabFile));
    renameSync(tmp, path);
    return path;
  });
}

export function writeTinyLlama(path: string, vocabPath: string): void {
  const c = TINY_LLAMA;
  const vocab = readGgufHeader(vocabPath);
  const tokens = vocab.kv.get('tokenizer.ggml.tokens');
  if (!tokens || tokens.type !== GgufType.ARRAY) throw new Error(`${vocabPath}: no tokenizer.ggml.tokens`);
  const nVocab = tokens.value.length;

  const kv = new Map<string, GgufValue>();
  const u32 = (value: number): GgufValue => ({ type: GgufType.UINT32, value });
  kv.set('general.architecture', { type: GgufType.STRING, value: 'llama' });
  kv.set('general.name', { type: GgufType.STRING, value: c.name });
  kv.set('general.file_type', u32(0)); // all F32
  kv.set('llama.context_length', u32(c.contextLength));
  kv.set('llama.embedding_length', u32(c.embedding));
  kv.set('llama.block_count', u32(c.layers));
  kv.set('llama.feed_forward_length', u32(c.feedForward));
  kv.set('llama.rope.dimension_count', u32(c.embedding / c.heads));
  kv.set('llama.rope.freq_base', { type: GgufType.FLOAT32, value: c.ropeBase });
  kv.set('llama.attention.head_count', u32(c.heads));
  kv.set('llama.attention.head_count_kv', u32(c.kvHeads));
  kv.set('llama.attention.layer_norm_rms_epsilon', { type: GgufType.FLOAT32, value: c.rmsEps });
  kv.set('llama.vocab_size', u32(nVocab));
  for (const [key, value] of vocab.kv) if (key.startsWith('tokenizer.')) kv.set(key, value);
  kv.set('tokenizer.chat_template', { type: GgufType.STRING, value: c.chatTemplate });

  const kvDim = (c.embedding / c.heads) * c.kvHeads;
  const tensors: GgufTensorToWrite[] = [];
  const add = (name: string, dims: number[], init: Init) =>
    tensors.push({ name, dims, type: GgmlType.F32, data: () => fill(name, dims, init) });
  add('token_embd.weight', [c.embedding, nVocab], { std: 1 });
  add('output_norm.weight', [c.embedding], { constant: 1 });
  // Untied and wide: logits depend on every layer (a tied output just echoes the last token) and
  // are peaky (std ≈ 8), so greedy decoding stays far from ties.
  add('output.weight', [c.embedding, nVocab], { std: 0.5 });
  const proj = (nIn: number): Init => ({ std: 1 / Math.sqrt(nIn) });
  for (let i = 0; i < c.layers; i++) {
    add(`blk.${i}.attn_norm.weight`, [c.embedding], { constant: 1 });
    add(`blk.${i}.attn_q.weight`, [c.embedding, c.embedding], proj(c.embedding));
    add(`blk.${i}.attn_k.weight`, [c.embedding, kvDim], proj(c.embedding));
    add(`blk.${i}.attn_v.weight`, [c.embedding, kvDim], proj(c.embedding));
    add(`blk.${i}.attn_output.weight`, [c.embedding, c.embedding], proj(c.embedding));
    add(`blk.${i}.ffn_norm.weight`, [c.embedding], { constant: 1 });
    add(`blk.${i}.ffn_gate.weight`, [c.embedding, c.feedForward], proj(c.embedding));
    add(`blk.${i}.ffn_up.weight`, [c.embedding, c.feedForward], proj(c.embedding));
    add(`blk.${i}.ffn_down.weight`, [c.feedForward, c.embedding], proj(c.feedForward));
  }
  writeGguf(path, kv, tensors);
}

type Init = { std: number } | { constant: number };

/** Gaussian values seeded by the model seed and the tensor's name (or a constant). */
function fill(name: string, dims: number[], init: Init): Uint8Array {
  const n = dims.reduce((a, b) => a * b, 1);
  const out =
    'constant' in init
      ? new Float32Array(n).fill(init.constant)
      : seededNormals(`${TINY_LLAMA.seed}:${name}`, n, init.std);
  return new Uint8Array(out.buffer);
}
