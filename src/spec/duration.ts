// Durations as users write them in specs, Go-style: "90s", "30m", "1h30m", "500ms".
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;

/** Milliseconds of a duration string; throws on anything else. */
export function parseDuration(text: string): number {
  if (!DURATION.test(text)) throw new Error(`not a duration: ${text}`);
  let ms = 0;
  for (const [, value, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(value) * UNIT_MS[unit!]!;
  return ms;
}

/** "1h30m", "45s", "1.5s": the shortest exact form, for messages. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s ? `${s}s` : ''}`;
}
