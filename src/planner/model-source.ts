// Where a model's shape comes from: the built-in catalog, a Hugging Face config.json (file or
// folder), or a GGUF file's metadata.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelArch } from './arch.js';
import { findModel, MODELS } from './catalog.js';
import { GgufType, readGgufHeader } from '../model/gguf.js';

type Json = Record<string, unknown>;

const num = (c: Json, ...keys: string[]): number | undefined => {
  for (const k of keys) if (typeof c[k] === 'number') return c[k] as number;
  return undefined;
};

/**
 * Parameters of a multimodal config's encoders: each vision/audio tower (pre-norm transformer
 * layers: q, k, v, o and an MLP, gated when it uses SiLU; the patch embedding) and a two-layer
 * projector from its features (merged patches, stacked feature layers) into the text model.
 */
function encoderParams(config: Json, textHidden: number): number {
  let total = 0;
  for (const key of ['vision_config', 'audio_config']) {
    const c = config[key];
    if (!c || typeof c !== 'object') continue;
    const enc = c as Json;
    const h = num(enc, 'hidden_size', 'd_model', 'embed_dim');
    const layers = num(enc, 'num_hidden_layers', 'depth', 'encoder_layers', 'num_layers');
    if (!h || !layers) continue;
    const inter = num(enc, 'intermediate_size', 'encoder_ffn_dim', 'mlp_dim') ?? 4 * h;
    const gated = String(enc.hidden_act ?? '').includes('silu');
    const patch = num(enc, 'patch_size') ?? 0;
    const patchEmbed =
      (num(enc, 'num_channels', 'in_channels') ?? 3) * patch * patch * (num(enc, 'temporal_patch_size') ?? 1) * h;
    const merge = (num(enc, 'spatial_merge_size') ?? num(config, 'spatial_merge_size') ?? 1) ** 2;
    const featureLayers = Array.isArray(config.vision_feature_layer) ? config.vision_feature_layer.length : 1;
    const projectorIn = h * merge * (key === 'vision_config' ? featureLayers : 1);
    total += layers * (4 * h * h + (gated ? 3 : 2) * h * inter + 4 * h) + patchEmbed;
    total += projectorIn * textHidden + textHidden * textHidden;
  }
  return total;
}

/** A Hugging Face config.json → ModelArch (Llama, Qwen2/3, Mistral, Mixtral, GLM, DeepSeek V2/V3 and kin). */
export function archFromHfConfig(config: Json, name: string): ModelArch {
  // Multimodal wrappers keep the language model's shapes in text_config (llm_config: InternVL).
  const text = (config.text_config as Json | undefined) ?? (config.llm_config as Json | undefined) ?? config;
  const need = (...keys: string[]) => {
    const v = num(text, ...keys);
    if (v === undefined) throw new Error(`${name}: config.json has no ${keys.join(' / ')}`);
    return v;
  };
  // Older and non-Llama configs name the same shapes differently (GPT-2, Falcon, ChatGLM).
  const hidden = need('hidden_size', 'd_model', 'n_embd');
  const heads = need('num_attention_heads', 'n_head', 'num_heads');
  const kvHeads =
    num(text, 'num_key_value_heads', 'multi_query_group_num', 'num_kv_heads', 'n_head_kv') ??
    (text.multi_query === true ? 1 : heads);
  const arch: ModelArch = {
    name,
    layers: need('num_hidden_layers', 'n_layer', 'num_layers'),
    hidden,
    heads,
    kvHeads,
    headDim: num(text, 'head_dim', 'kv_channels') ?? hidden / heads,
    intermediate: num(text, 'intermediate_size', 'ffn_hidden_size', 'n_inner') ?? 4 * hidden,
    vocab: need('vocab_size', 'padded_vocab_size'),
    // Hugging Face ties the embeddings unless the config says otherwise.
    tiedEmbeddings: text.tie_word_embeddings !== false,
    maxPositions: num(text, 'max_position_embeddings', 'n_positions', 'seq_length', 'max_sequence_length') ?? 4096,
    ...(String(text.model_type ?? '').startsWith('qwen2') || text.attention_bias === true ? { qkvBias: true } : {}),
  };
  const encoder = encoderParams(config, hidden);
  if (encoder > 0) arch.encoderParams = encoder;
  const experts = num(text, 'num_local_experts', 'n_routed_experts', 'num_experts');
  if (experts) {
    arch.moe = {
      experts,
      activeExperts: need('num_experts_per_tok'),
      sharedExperts: num(text, 'n_shared_experts') ?? 0,
      expertIntermediate: num(text, 'moe_intermediate_size') ?? arch.intermediate,
      denseLayers: num(text, 'first_k_dense_replace') ?? 0,
    };
  }
  const kvLora = num(text, 'kv_lora_rank');
  if (kvLora) {
    arch.mla = {
      qLoraRank: num(text, 'q_lora_rank') ?? 0,
      kvLoraRank: kvLora,
      qkNopeHeadDim: need('qk_nope_head_dim'),
      qkRopeHeadDim: need('qk_rope_head_dim'),
      vHeadDim: need('v_head_dim'),
    };
    arch.headDim = arch.mla.qkNopeHeadDim + arch.mla.qkRopeHeadDim;
  }
  return arch;
}

/** GGUF metadata → ModelArch, with the exact bytes of its (quantized) weights. */
export function archFromGguf(path: string): { arch: ModelArch; weightBytes: number } {
  const { kv, tensors } = readGgufHeader(path);
  const a = String(kv.get('general.architecture')?.value);
  const get = (key: string) => {
    const v = kv.get(`${a}.${key}`);
    return v && v.type !== GgufType.ARRAY ? Number(v.value) : undefined;
  };
  const need = (key: string) => {
    const v = get(key);
    if (v === undefined) throw new Error(`${path}: GGUF metadata has no ${a}.${key}`);
    return v;
  };
  const tokens = kv.get('tokenizer.ggml.tokens');
  const hidden = need('embedding_length');
  const heads = need('attention.head_count');
  const arch: ModelArch = {
    name: String(kv.get('general.name')?.value ?? path),
    layers: need('block_count'),
    hidden,
    heads,
    kvHeads: get('attention.head_count_kv') ?? heads,
    headDim: get('attention.key_length') ?? hidden / heads,
    intermediate: need('feed_forward_length'),
    vocab: get('vocab_size') ?? (tokens?.type === GgufType.ARRAY ? tokens.value.length : 0),
    tiedEmbeddings: !tensors.some((t) => t.name === 'output.weight'),
    maxPositions: get('context_length') ?? 4096,
  };
  const experts = get('expert_count');
  if (experts) {
    arch.moe = {
      experts,
      activeExperts: need('expert_used_count'),
      sharedExperts: get('expert_shared_count') ?? 0,
      expertIntermediate: get('expert_feed_forward_length') ?? arch.intermediate,
      denseLayers: get('leading_dense_block_count') ?? 0,
    };
  }
  const weightBytes = tensors.reduce((sum, t) => sum + ggmlBytes(t.dims, t.type, t.name), 0);
  return { arch, weightBytes };
}

/** ggml block sizes: [elements per block, bytes per block], by type id (ggml.h). */
const GGML_BLOCKS: Record<number, [number, number]> = {
  0: [1, 4],
  1: [1, 2],
  30: [1, 2],
  2: [32, 18],
  3: [32, 20],
  6: [32, 22],
  7: [32, 24],
  8: [32, 34],
  10: [256, 84],
  11: [256, 110],
  12: [256, 144],
  13: [256, 176],
  14: [256, 210],
  15: [256, 292],
};

function ggmlBytes(dims: number[], type: number, name: string): number {
  const block = GGML_BLOCKS[type];
  if (!block) throw new Error(`tensor ${name}: ggml type ${type} is not known to the planner`);
  return (dims.reduce((a, b) => a * b, 1) / block[0]) * block[1];
}

export interface ResolvedModel {
  arch: ModelArch;
  /** Exact weight bytes when the source says (GGUF); otherwise computed from --dtype. */
  weightBytes?: number;
}

export function resolveModel(spec: string): ResolvedModel {
  if (existsSync(spec)) {
    if (statSync(spec).isDirectory()) {
      const config = join(spec, 'config.json');
      if (!existsSync(config)) throw new Error(`${spec}: no config.json in this folder`);
      return { arch: archFromHfConfig(JSON.parse(readFileSync(config, 'utf8')) as Json, spec) };
    }
    if (spec.endsWith('.gguf')) return archFromGguf(spec);
    return { arch: archFromHfConfig(JSON.parse(readFileSync(spec, 'utf8')) as Json, spec) };
  }
  const arch = findModel(spec);
  if (!arch) {
    throw new Error(
      `unknown model "${spec}": give a config.json, a folder holding one, a .gguf file, or one of ${MODELS.map((m) => m.name).join(', ')}`,
    );
  }
  return { arch };
}
