// A model as the planner sees it: the shapes that decide memory, KV cache and how it may split.

export interface MoeShape {
  /** Routed experts, and how many each token uses. */
  experts: number;
  activeExperts: number;
  sharedExperts: number;
  /** Intermediate size of one expert. */
  expertIntermediate: number;
  /** The first layers are dense (DeepSeek's first_k_dense_replace). */
  denseLayers: number;
}

/** Multi-head latent attention (DeepSeek V2/V3): a compressed KV cache shared by all heads. */
export interface MlaShape {
  qLoraRank: number;
  kvLoraRank: number;
  qkNopeHeadDim: number;
  qkRopeHeadDim: number;
  vHeadDim: number;
}

export interface ModelArch {
  name: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Dense MLP intermediate size (also the dense layers of an MoE model). */
  intermediate: number;
  vocab: number;
  tiedEmbeddings: boolean;
  maxPositions: number;
  /** q/k/v projections carry biases (Qwen2). */
  qkvBias?: boolean;
  moe?: MoeShape;
  mla?: MlaShape;
  /** Multimodal encoders (vision/audio towers and their projectors), parameters; kept in 16 bits. */
  encoderParams?: number;
}

/** Parameter counts of the parts the planner places separately. */
export interface ParamCounts {
  embedding: number;
  lmHead: number;
  /** One decoder layer's attention. */
  attention: number;
  /** Per layer: dense MLP, or MoE experts + router, by layer index. */
  mlp: (layer: number) => number;
  /** Per layer: the MLP weights one token actually reads (MoE: active experts only). */
  activeMlp: (layer: number) => number;
  norms: number;
  /** Multimodal encoders, on the first pipeline stage. */
  encoder: number;
  total: number;
}

export function paramCounts(m: ModelArch): ParamCounts {
  const embedding = m.vocab * m.hidden;
  const lmHead = m.tiedEmbeddings ? 0 : m.vocab * m.hidden;
  let attention: number;
  if (m.mla) {
    const a = m.mla;
    const qHead = a.qkNopeHeadDim + a.qkRopeHeadDim;
    const q =
      a.qLoraRank > 0
        ? m.hidden * a.qLoraRank + a.qLoraRank + a.qLoraRank * m.heads * qHead
        : m.hidden * m.heads * qHead;
    attention =
      q +
      m.hidden * (a.kvLoraRank + a.qkRopeHeadDim) +
      a.kvLoraRank +
      a.kvLoraRank * m.heads * (a.qkNopeHeadDim + a.vHeadDim) +
      m.heads * a.vHeadDim * m.hidden;
  } else {
    const q = m.heads * m.headDim;
    const kv = m.kvHeads * m.headDim;
    attention = m.hidden * (q + 2 * kv) + q * m.hidden + (m.qkvBias ? q + 2 * kv : 0);
  }
  const dense = 3 * m.hidden * m.intermediate;
  const moe = m.moe;
  const expert = moe ? 3 * m.hidden * moe.expertIntermediate : 0;
  const isDense = (layer: number) => !moe || layer < moe.denseLayers;
  const mlp = (layer: number) =>
    isDense(layer) ? dense : moe!.experts * expert + moe!.sharedExperts * expert + m.hidden * moe!.experts;
  const activeMlp = (layer: number) =>
    isDense(layer) ? dense : (moe!.activeExperts + moe!.sharedExperts) * expert + m.hidden * moe!.experts;
  const norms = 2 * m.hidden;
  const encoder = m.encoderParams ?? 0;
  let total = embedding + lmHead + m.hidden + encoder;
  for (let l = 0; l < m.layers; l++) total += attention + mlp(l) + norms;
  return { embedding, lmHead, attention, mlp, activeMlp, norms, encoder, total };
}
