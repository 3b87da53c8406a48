// The status tables `tandem up` and `tandem status` show: one row per group member, then one per
// service with its ready and desired replicas and, when autoscaled, its last scaling decision.
import type { ServiceSnapshot } from '../core/snapshot.js';

export function statusTable(services: ServiceSnapshot[]): string {
  const members: string[][] = [['SERVICE', 'REPLICA', 'MEMBER', 'ADDRESS', 'STATE', 'GROUP', 'RESTARTS']];
  for (const s of services) {
    for (const g of s.groups) {
      for (const m of g.members) {
        members.push([
          s.name,
          String(g.replica),
          `${m.index} ${m.role}`,
          m.address,
          m.state,
          g.phase,
          String(g.restarts),
        ]);
      }
    }
  }
  const replicas: string[][] = [['SERVICE', 'READY', 'DESIRED', 'AUTOSCALING', 'LAST SCALING']];
  for (const s of services) {
    const scaling = s.autoscaling;
    const last = scaling?.last;
    replicas.push([
      s.name,
      String(s.groups.filter((g) => g.phase === 'Ready').length),
      String(s.replicas),
      scaling ? `${scaling.minReplicas}–${scaling.maxReplicas}` : '-',
      last ? `${new Date(last.at).toISOString().slice(11, 19)} ${last.from} → ${last.to}: ${last.reason}` : '-',
    ]);
  }
  return `${table(members)}\n\n${table(replicas)}`;
}

function table(rows: string[][]): string {
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
