// The status table `tandem up` shows: one row per group member.
import type { ServiceSnapshot } from '../runtime/reconciler.js';

export function statusTable(services: ServiceSnapshot[]): string {
  const rows: string[][] = [['SERVICE', 'REPLICA', 'MEMBER', 'ADDRESS', 'STATE', 'GROUP', 'RESTARTS']];
  for (const s of services) {
    for (const g of s.groups) {
      for (const m of g.members) {
        rows.push([s.name, String(g.replica), `${m.index} ${m.role}`, m.address, m.state, g.phase, String(g.restarts)]);
      }
    }
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
