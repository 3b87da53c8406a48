// Where a JSON object, array or string ends, found by scanning its text (brackets counted outside
// strings, escapes skipped) rather than parsing it: for reading one member out of an engine's
// answer (usage.ts) or cutting one out of its events (resume.ts) without parsing the whole.
const [QUOTE, BACKSLASH, BRACE, BRACKET, CLOSE_BRACE, CLOSE_BRACKET] = ['"', '\\', '{', '[', '}', ']'].map((c) =>
  c.charCodeAt(0),
) as [number, number, number, number, number, number];

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
    else if (c === BRACE || c === BRACKET) depth++;
    else if ((c === CLOSE_BRACE || c === CLOSE_BRACKET) && --depth === 0) return i + 1;
  }
  return undefined;
}
