// A plan for people: a table, and an SVG of how layers and shards map onto nodes and GPUs.
import type { Layout, Plan } from './plan.js';

const gib = (x: number) => `${x.toFixed(1)}`;
const count = (n: number) => n.toLocaleString('en-US');

export function planTable(p: Plan, limit = 8): string {
  const lines: string[] = [];
  lines.push(`${p.model} on ${p.gpu} × ${p.gpusPerNode} per node, max length ${count(p.maxModelLen)} tokens`);
  lines.push(`engine: ${p.engine.label}${p.engine.version === 'latest' ? '' : `, as ${p.engine.version}`}`);
  if (p.layouts.length === 0) lines.push('', 'no feasible layout');
  else {
    const rows = [
      [
        '#',
        'TP',
        'PP',
        'DP',
        'NODES',
        'WEIGHTS/GPU',
        'KV/GPU',
        'RESERVE',
        'KV TOKENS',
        'SEQS@MAX',
        'DECODE≤ tok/s',
        'TP BYTES/tok',
        'PP BYTES/tok',
      ],
    ];
    p.layouts.slice(0, limit).forEach((l, i) => {
      const heaviest = l.memory.reduce((a, b) => (b.weightsGiB > a.weightsGiB ? b : a));
      const leanest = l.memory.reduce((a, b) => (b.kvCacheGiB < a.kvCacheGiB ? b : a));
      rows.push([
        String(i + 1),
        String(l.tp),
        String(l.pp),
        String(l.dp),
        String(l.nodes),
        `${gib(heaviest.weightsGiB)} GiB`,
        `${gib(leanest.kvCacheGiB)} GiB`,
        `${gib(heaviest.reserveGiB)} GiB`,
        count(l.kvTokens),
        count(l.maxConcurrentSequences),
        l.decodeTokensPerSecondMax?.toFixed(0) ?? '-',
        count(l.communication.tensorParallelAllReduceBytesPerToken),
        count(l.communication.pipelineBytesPerToken),
      ]);
    });
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    lines.push(
      '',
      ...rows.map((r) =>
        r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '),
      ),
    );
    const best = p.layouts[0]!;
    lines.push(
      '',
      `best: tp ${best.tp} × pp ${best.pp} on ${best.nodes} node(s), utilisation ${best.memoryUtilization}`,
    );
    // Per GPU of each stage: where the memory goes. The stage with the smallest cache decides.
    for (const m of best.memory) {
      const decides = best.pp > 1 && m.stage === best.decidingStage ? ' ← decides the KV capacity' : '';
      const graphs = m.cudaGraphGiB > 0 ? `, CUDA graphs ${gib(m.cudaGraphGiB)}` : '';
      lines.push(
        `  stage ${m.stage} per GPU: weights ${gib(m.weightsGiB)}, activations ${gib(m.activationGiB)}, outside PyTorch ${gib(m.nonTorchGiB)}${graphs}, KV cache ${gib(m.kvCacheGiB)} GiB (${count(m.kvTokens)} tokens)${decides}`,
      );
    }
    const env = Object.entries(best.flags.env)
      .map(([k, v]) => `${k}=${v} `)
      .join('');
    lines.push(`  flags: ${env}${best.flags.args.join(' ')}`);
    for (const w of best.warnings) lines.push(`  warning: ${w}`);
    lines.push(`  stages: ${best.memory.map((m) => `layers ${m.layers[0]}–${m.layers[1] - 1}`).join(' | ')}`);
  }
  if (p.infeasible.length > 0) {
    lines.push('', 'infeasible:');
    for (const i of p.infeasible.slice(0, limit)) lines.push(`  tp ${i.tp} × pp ${i.pp}: ${i.reason}`);
    if (p.infeasible.length > limit) lines.push(`  … ${p.infeasible.length - limit} more (--json lists all)`);
  }
  return lines.join('\n');
}

/** Nodes as boxes, GPUs inside them, each GPU labelled with its stage's layers and its shard. */
export function layoutSvg(p: Plan, l: Layout): string {
  const gpuW = 116;
  const gpuH = 64;
  const pad = 12;
  const perNode = p.gpusPerNode;
  const nodeW = perNode * (gpuW + pad) + pad;
  const nodeH = gpuH + 2 * pad + 20;
  const width = Math.max(nodeW + 2 * pad, 420);
  const height = l.nodes * (nodeH + pad) + 60;
  const colors = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7'];
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
  );
  parts.push(
    `<text x="${pad}" y="20" font-size="14" font-weight="bold">${esc(p.model)}: tp ${l.tp} × pp ${l.pp} on ${l.nodes} × ${esc(p.gpu)} node(s)</text>`,
  );
  parts.push(
    `<text x="${pad}" y="38">KV cache: ${count(l.kvTokens)} tokens; colour = pipeline stage, shard = tensor-parallel rank</text>`,
  );
  for (let node = 0; node < l.nodes; node++) {
    const y = 50 + node * (nodeH + pad);
    parts.push(`<rect x="${pad}" y="${y}" width="${nodeW}" height="${nodeH}" rx="6" fill="#f4f4f4" stroke="#999"/>`);
    parts.push(`<text x="${pad + 6}" y="${y + 14}" font-weight="bold">node ${node}</text>`);
    for (let g = 0; g < perNode; g++) {
      const rank = node * perNode + g;
      const x = pad + pad + g * (gpuW + pad);
      const gy = y + 20;
      const used = rank < l.tp * l.pp;
      const stage = Math.floor(rank / l.tp);
      const shard = rank % l.tp;
      const mem = l.memory[stage];
      parts.push(
        `<rect x="${x}" y="${gy}" width="${gpuW}" height="${gpuH}" rx="4" fill="${used ? colors[stage % colors.length] : '#ddd'}" stroke="#555"/>`,
      );
      parts.push(`<text x="${x + 6}" y="${gy + 15}" fill="${used ? '#fff' : '#666'}">GPU ${g}</text>`);
      if (used && mem) {
        parts.push(
          `<text x="${x + 6}" y="${gy + 30}" fill="#fff">stage ${stage}: L${mem.layers[0]}–${mem.layers[1] - 1}</text>`,
        );
        parts.push(`<text x="${x + 6}" y="${gy + 44}" fill="#fff">shard ${shard + 1}/${l.tp}</text>`);
        parts.push(
          `<text x="${x + 6}" y="${gy + 58}" fill="#fff">${gib(mem.weightsGiB)}+${gib(mem.kvCacheGiB)} GiB</text>`,
        );
      } else {
        parts.push(`<text x="${x + 6}" y="${gy + 30}" fill="#666">${l.dp > 1 ? 'data parallel' : 'idle'}</text>`);
      }
    }
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
