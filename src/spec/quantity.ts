// Kubernetes resource quantities ("500m", "16Gi", 2) as numbers.
const SUFFIX: Record<string, number> = {
  '': 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

export const QUANTITY = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/;

export function parseQuantity(q: string | number): number {
  if (typeof q === 'number') return q;
  const match = QUANTITY.exec(q);
  if (!match) throw new Error(`not a quantity: ${q}`);
  return Number(match[1]) * SUFFIX[match[2] ?? '']!;
}
