// One request to an engine, through undici's dispatcher API: the answer's body is handed to the
// reader chunk by chunk, synchronously as undici parses it. undici's request() wraps every answer
// in a Readable stream and its abort signal in listeners of its own, and an async iterator costs
// promises per chunk; under load each was a large share of the gateway's CPU per request (profiles
// of bench:peers), and CPU the gateway spends is taken from the engines it shares the machine with.
import type { Dispatcher } from 'undici';
import type { Cancel } from './cancel.js';

export interface UpstreamRequest {
  path: string;
  headers: Record<string, string>;
  body: Buffer;
  /** Cancelling it cancels the request (the engine stops generating when its connection closes). */
  cancel: Cancel;
  /** Called once the request is under way, with what cuts it: the sender (or its body's reader) gets `reason`. */
  started?(abort: (reason: Error) => void): void;
}

export interface UpstreamResponse {
  statusCode: number;
  /** A header's value (a repeated one's values joined with ", "); `name` in lower case. */
  header(name: string): string | undefined;
  /**
   * Hands the body's chunks to `sink` in order as they arrive; resolves at the body's end, rejects
   * where the answer failed mid-way, `sink` threw, or `cancel` was called. Once `sink` returns false
   * the connection is paused, and nothing more is handed over, until `resume()`. Once per answer.
   */
  read(sink: (chunk: Buffer) => boolean): Promise<void>;
  resume(): void;
  /** The rest of the answer is not wanted: its connection is cut and `read` rejects with `reason`. */
  cancel(reason: Error): void;
  /** Reads the rest of the body and drops it, keeping the connection for the next request. */
  dump(): Promise<void>;
}

/** The connection is paused while this much has arrived and not been taken. */
const HIGH_WATER_BYTES = 64 * 1024;

/** Resolves with the answer's status and headers, or rejects with undici's error (timeouts, refused, reset). */
export function send(dispatcher: Dispatcher, request: UpstreamRequest): Promise<UpstreamResponse> {
  const { cancel } = request;
  return new Promise((resolve, reject) => {
    // Chunks not handed over yet: arrived before `read`, or while the reader has the body paused.
    const chunks: Buffer[] = [];
    let buffered = 0;
    let sink: ((chunk: Buffer) => boolean) | undefined;
    let paused = false;
    let ended = false;
    let failure: Error | undefined;
    let settle: { resolve: () => void; reject: (err: Error) => void } | undefined;
    let controller: Dispatcher.DispatchController | undefined;
    const finish = () => cancel.onCancel(undefined);
    // Cut by this side (not wanted, or the reader failed): what has arrived is dropped, `read` rejects.
    const cut = (reason: Error) => {
      if (ended || failure) return;
      failure = reason;
      chunks.length = 0;
      settle?.reject(reason);
      // Not from within undici's own callback (a reader may cut while it is handed a chunk).
      queueMicrotask(() => controller?.abort(reason));
    };
    // Hands over what has arrived while the reader takes it; settles `read` once all is handed over
    // (an engine's failure after what it sent: that is handed over first).
    const deliver = () => {
      if (!sink) return;
      while (!paused && chunks.length > 0) {
        const chunk = chunks.shift()!;
        buffered -= chunk.length;
        try {
          paused = !sink(chunk);
        } catch (err) {
          cut(err as Error);
        }
      }
      if (paused) {
        if (!ended && !failure) controller?.pause();
      } else if (failure) settle?.reject(failure);
      else if (ended) settle?.resolve();
      else if (controller?.paused) controller.resume();
    };
    const read = (reader: (chunk: Buffer) => boolean) =>
      new Promise<void>((resolve, reject) => {
        settle = { resolve, reject };
        sink = reader;
        deliver();
      });
    const response = (
      statusCode: number,
      headers: Record<string, string | string[] | undefined>,
    ): UpstreamResponse => ({
      statusCode,
      // As undici gives them, names in lower case: looked up, not copied (most are never read).
      header: (name) => {
        const value = headers[name];
        return Array.isArray(value) ? value.join(', ') : value;
      },
      read,
      resume: () => {
        paused = false;
        deliver();
      },
      cancel: cut,
      dump: () => read(() => true),
    });
    cancel.onCancel(() => controller?.abort(new Error('the client went away')));
    dispatcher.dispatch(
      { path: request.path, method: 'POST', headers: request.headers, body: request.body },
      {
        onRequestStart(c) {
          controller = c;
          request.started?.((reason) => c.abort(reason));
          if (cancel.cancelled) c.abort(new Error('the client went away'));
        },
        onResponseStart(_c, statusCode, headers) {
          if (statusCode < 200) return; // 1xx: the answer is still to come
          resolve(response(statusCode, headers));
        },
        onResponseData(c, chunk) {
          if (failure) return;
          chunks.push(chunk);
          buffered += chunk.length;
          if (sink) deliver();
          else if (buffered >= HIGH_WATER_BYTES) c.pause();
        },
        onResponseEnd() {
          ended = true;
          finish();
          deliver();
        },
        onResponseError(_c, err) {
          finish();
          reject(err); // no effect once resolved: the body's reader gets it
          failure ??= err;
          deliver();
        },
      },
    );
  });
}
