// Where a JSON object, array or string ends, found by scanning its text (brackets counted outside
// strings, escapes skipped) rather than parsing it: for reading one member out of an engine's
// answer (usage.ts) or cutting one out of its events (resume.ts) without parsing the whole.
const [QUOTE, BACKSLASH] = ['"', '\\'].map((c) => c.charCodeAt(0)) as [number, number];
const OPENS = new Set(['{', '['].map((c) => c.charCodeAt(0)));
const CLOSES = new Set(['}', ']'].map((c) => c.charCodeAt(0)));

/**
 * The index after the object, array or string that starts at `from`, in a text of `length` read
 * through `code` (a Buffer's bytes or a string's char codes); undefined where it does not end there.
 */
export function jsonEnd(code: (i: number) => number, length: number, from: number): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = from; i < length; i++) {
    const c = code(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) {
        inString = false;
        if (depth === 0) return i + 1;
      }
    } else if (c === QUOTE) inString = true;
    else if (OPENS.has(c)) depth++;
    else if (CLOSES.has(c) && --depth === 0) return i + 1;
  }
  return undefined;
}
