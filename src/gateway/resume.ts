// Streams that survive their replica. A streamed completion whose replica dies mid-stream is
// continued on another one: the new request's prompt is the old prompt plus the tokens already
// sent, and it asks for what is left of max_tokens. The client sees one stream: the continuation's
// events carry the first stream's id, and its usage counts the whole answer.
//
// Token ids, not text, where the engine streams them: re-tokenizing generated text can split it
// differently from how it was generated, and a greedy continuation would then diverge.
// - llama-server: `return_tokens` + `verbose` put each event's token ids (and the number decoded
//   so far) in `__verbose`. A token that ends in an incomplete UTF-8 character is sent with the
//   next one's event but its id is not, so from the first such gap on, the rest goes as text
//   (llama-server takes a prompt mixing strings and ids).
// - vLLM: `return_token_ids` puts the prompt's ids in the first event and each event's ids in its
//   choice; the continuation's prompt is all ids.
// - Otherwise (and for chat, where the prompt is the engine's own rendering of the messages), the
//   text: completions append it to the prompt; chat sends it as the assistant message to continue
//   (`continue_final_message`, which vLLM and llama-server both take).
// What the gateway asked for only for itself is removed from the events before the client sees them.
import type { StreamTokenIds } from '../core/service.js';
import { jsonEnd } from './json-end.js';

type Json = Record<string, unknown>;

const COMPLETIONS = '/v1/completions';
const CHAT = '/v1/chat/completions';

export class ResumableStream {
  /** The request to send first: the client's, asking the engine for token ids where it can. */
  readonly body: Buffer;
  private readonly strip: string[];
  /** Carried over from a chunk that ended mid-line. */
  private partial = '';
  /** The previous line was a dropped event's: its blank line goes too. */
  private dropBlank = false;
  /** An event's line went out without the blank line that ends it. */
  private open = false;
  /** Written before a continuation's first event: the end of the event its replica left open. */
  private prefix = '';
  private id?: unknown;
  private created?: unknown;
  /** Prompt tokens of the client's request, where the engine said. */
  private promptTokens?: number;
  /** The prompt's ids (vLLM). */
  private promptIds?: number[];
  /** Ids of the tokens sent, up to the first one the engine did not report. */
  private ids: number[] = [];
  /**
   * vLLM: ids whose text it holds back (they end inside a UTF-8 character). The client has not
   * seen them, and a continuation must not end its prompt on them: vLLM's detokenizer would start
   * over and stream the whole prompt's text again. The continuation generates them anew.
   */
  private heldIds: number[] = [];
  /** Text sent after the last id in `ids` (all of it when the engine reports no ids). */
  private textAfterIds = '';
  /** All text sent. */
  private text = '';
  /** Tokens sent: as the engine counts them, or one per event with text. */
  private sent = 0;
  /** Tokens that a continuation added to its prompt: its usage moves them back to the completion. */
  private resumedAt?: number;
  /** A finish_reason or [DONE] was seen: nothing is left to continue. */
  finished = false;

  private constructor(
    private readonly path: string,
    request: Json,
    private readonly dialect: StreamTokenIds | undefined,
  ) {
    const ask: Json =
      dialect === 'llama-server'
        ? { return_tokens: true, verbose: true }
        : dialect === 'vllm'
          ? { return_token_ids: true }
          : {};
    this.strip =
      dialect === 'llama-server' && !request.verbose
        ? ['__verbose']
        : dialect === 'vllm' && !request.return_token_ids
          ? ['token_ids', 'prompt_token_ids']
          : [];
    this.body = Buffer.from(JSON.stringify({ ...request, ...ask }));
  }

  /** A stream that can be continued elsewhere: one choice, of completions or chat; none otherwise. */
  static for(path: string, request: unknown, dialect?: StreamTokenIds): ResumableStream | undefined {
    const r = request as Json;
    if (r.stream !== true || (r.n ?? 1) !== 1 || (r.best_of ?? 1) !== 1 || r.echo === true) return undefined;
    if (path === COMPLETIONS) {
      const p = r.prompt;
      const single = typeof p === 'string' || (Array.isArray(p) && p.every((t) => typeof t === 'number'));
      return single ? new ResumableStream(path, r, dialect) : undefined;
    }
    if (path === CHAT && Array.isArray(r.messages)) return new ResumableStream(path, r, dialect);
    return undefined;
  }

  /** An upstream chunk as the client is to see it: whole lines only, the rest carried to the next. */
  relay(chunk: Buffer | string, continuing: boolean): string {
    const lines = (this.partial + chunk.toString()).split('\n');
    this.partial = lines.pop()!;
    let out = this.prefix;
    this.prefix = '';
    for (const line of lines) {
      if (line === '' || line === '\r') {
        if (!this.dropBlank) out += line + '\n';
        this.dropBlank = false;
        this.open = false;
        continue;
      }
      const event = this.event(line, continuing);
      if (event === undefined) {
        this.dropBlank = true;
      } else {
        out += event + '\n';
        this.open = true;
      }
    }
    return out;
  }

  /** A last line the stream ended without its newline, as the client is to see it. */
  flush(continuing: boolean): string {
    const rest = this.partial;
    this.partial = '';
    return rest === '' ? '' : (this.event(rest, continuing) ?? '');
  }

  /** The next request, going on from what the client has; none when that cannot be done. */
  continuation(): Buffer | undefined {
    if (this.finished) return undefined;
    this.sent -= this.heldIds.length;
    this.heldIds = [];
    const r: Json = JSON.parse(this.body.toString()) as Json;
    const limit = this.path === CHAT && r.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens';
    if (typeof r[limit] === 'number') {
      const left = r[limit] - this.sent;
      if (left <= 0) return undefined;
      r[limit] = left;
    }
    if (this.path === CHAT) {
      const messages = r.messages as { role?: unknown; content?: unknown }[];
      const last = messages.at(-1);
      // A client's own assistant prefix is continued as one message with what was generated.
      r.messages =
        last?.role === 'assistant' && typeof last.content === 'string'
          ? [...messages.slice(0, -1), { ...last, content: last.content + this.text }]
          : [...messages, { role: 'assistant', content: this.text }];
      r.continue_final_message = true;
      r.add_generation_prompt = false;
    } else {
      const prompt = r.prompt as string | number[];
      const asIds = (p: string | number[]) => (typeof p === 'string' ? [p] : p);
      if (this.dialect === 'llama-server') {
        r.prompt = [...asIds(prompt), ...this.ids, ...(this.textAfterIds ? [this.textAfterIds] : [])];
      } else if (this.dialect === 'vllm' && this.promptIds && this.textAfterIds === '') {
        r.prompt = [...this.promptIds, ...this.ids];
      } else if (typeof prompt === 'string') {
        r.prompt = prompt + this.text;
      } else {
        return undefined;
      }
    }
    this.resumedAt = this.sent;
    // What the dead replica left half-sent: a partial line is dropped, an open event closed.
    this.partial = '';
    this.prefix = this.open ? '\n' : '';
    this.open = false;
    return Buffer.from(JSON.stringify(r));
  }

  /** One line of the stream as the client sees it; undefined: dropped. */
  private event(line: string, continuing: boolean): string | undefined {
    if (!line.startsWith('data:')) return line;
    const payload = line.slice(5).trim();
    if (payload === '[DONE]') {
      this.finished = true;
      return line;
    }
    let e: Json;
    try {
      e = JSON.parse(payload) as Json;
    } catch {
      return line;
    }
    if (e.error !== undefined) {
      this.finished = true; // the engine's own error: it is alive and said why
      return line;
    }
    this.observe(e);
    let changed = false;
    if (continuing) {
      e.id = this.id;
      e.created = this.created;
      changed = true;
      const choice = (e.choices as Json[] | undefined)?.[0];
      const delta = choice?.delta as Json | undefined;
      // The client has had its role: a continuation's role-only opening is not news.
      if (delta && 'role' in delta) {
        delete delta.role;
        const empty = Object.values(delta).every((v) => v === null || v === '');
        if (empty && !choice!.finish_reason && !e.usage) return undefined;
      }
      const usage = e.usage as { prompt_tokens?: number; completion_tokens?: number } | null | undefined;
      if (usage && typeof usage.prompt_tokens === 'number' && typeof usage.completion_tokens === 'number') {
        const moved = this.promptTokens === undefined ? (this.resumedAt ?? 0) : usage.prompt_tokens - this.promptTokens;
        usage.prompt_tokens -= moved;
        usage.completion_tokens += moved;
      }
    } else if (this.id === undefined) {
      this.id = e.id;
      this.created = e.created;
    }
    // The happy path: the engine's event as it sent it, less what the gateway asked for only for itself.
    if (!changed) {
      let cut: string | undefined = line;
      for (const key of this.strip) cut = cut && withoutMember(cut, key);
      if (cut !== undefined) return cut;
    }
    for (const key of this.strip) {
      delete e[key];
      for (const c of (e.choices as Json[] | undefined) ?? []) delete c[key];
    }
    return `data: ${JSON.stringify(e)}`;
  }

  /** Takes note of what an event sent. */
  private observe(e: Json): void {
    const choice = (e.choices as Json[] | undefined)?.[0];
    if (!choice) return;
    if (choice.finish_reason) this.finished = true;
    const text =
      this.path === CHAT
        ? (((choice.delta as Json | undefined)?.content as string | null | undefined) ?? '')
        : ((choice.text as string | undefined) ?? '');
    this.text += text;
    const verbose = e.__verbose as { tokens?: number[]; tokens_predicted?: number; tokens_evaluated?: number };
    const vllmIds = choice.token_ids as number[] | undefined;
    const prompt = (e.prompt_token_ids ?? choice.prompt_token_ids) as number[] | undefined;
    if (prompt && this.resumedAt === undefined) {
      this.promptIds = prompt;
      this.promptTokens = prompt.length;
    }
    if (verbose && this.resumedAt === undefined && typeof verbose.tokens_evaluated === 'number') {
      this.promptTokens = verbose.tokens_evaluated;
    }
    const ids = verbose?.tokens ?? vllmIds;
    const before = this.sent;
    this.sent =
      typeof verbose?.tokens_predicted === 'number'
        ? (this.resumedAt ?? 0) + verbose.tokens_predicted
        : this.sent + (ids?.length ?? (text ? 1 : 0));
    // Ids are exact while every token decoded has had its id reported; after a gap, text.
    if (ids && this.textAfterIds === '' && this.sent - before === ids.length) {
      if (this.dialect !== 'vllm') this.ids.push(...ids);
      else if (!text) this.heldIds.push(...ids);
      else {
        this.ids.push(...this.heldIds, ...ids);
        this.heldIds = [];
      }
    } else this.textAfterIds += text;
  }
}

/**
 * `line` (an event as the engine sent it, valid JSON after `data:`) without every member named
 * `key`, cut out of the text; undefined where the text is not laid out as expected (the caller
 * re-serializes then). A member's name can be found by its text alone: within a JSON string every
 * quote is escaped, so `,"key":` or `{"key":` is a member wherever it appears.
 */
function withoutMember(line: string, key: string): string | undefined {
  const name = `"${key}":`;
  let out = line;
  for (let at = out.indexOf(name); at >= 0; at = out.indexOf(name, at)) {
    const before = out[at - 1];
    const end = valueEnd(out, at + name.length);
    if (end === undefined || (before !== ',' && before !== '{')) return undefined;
    // `,"key":v` goes with its comma; a first member `{"key":v,` with the comma after it.
    if (before === ',') out = out.slice(0, at - 1) + out.slice(end);
    else out = out.slice(0, at) + out.slice(out[end] === ',' ? end + 1 : end);
  }
  return out;
}

/** Where the JSON value starting at `from` ends (the index after it), in compact JSON. */
function valueEnd(text: string, from: number): number | undefined {
  if ('{["'.includes(text[from] ?? ' ')) return jsonEnd((i) => text.charCodeAt(i), text.length, from);
  // A number, true, false or null: up to the next comma or closing bracket.
  const end = text.slice(from).search(/[,}\]]/);
  return end > 0 ? from + end : undefined;
}
