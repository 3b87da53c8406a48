// One request to an engine, through undici's dispatcher API: the answer's body is handed over
// chunk by chunk through a small async iterator. undici's request() wraps every answer in a
// Readable stream and its abort signal in listeners of its own; under load that was a third of
// the gateway's CPU per request (profiles of bench:peers), and CPU the gateway spends is taken
// from the engines it shares the machine with.
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
  /** Names in lower case (as undici gives them); a repeated header's values joined with ", ". */
  headers: Record<string, string>;
  /** The body's chunks as they arrive; throws where the answer failed mid-way. Leaving the loop early cancels the rest. */
  body: AsyncIterable<Buffer>;
  /** Reads the rest of the body and drops it, keeping the connection for the next request. */
  dump(): Promise<void>;
}

/** The connection is paused while this much has arrived and not been taken. */
const HIGH_WATER_BYTES = 64 * 1024;

/** Resolves with the answer's status and headers, or rejects with undici's error (timeouts, refused, reset). */
export function send(dispatcher: Dispatcher, request: UpstreamRequest): Promise<UpstreamResponse> {
  const { cancel } = request;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let buffered = 0;
    let ended = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    let controller: Dispatcher.DispatchController | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const finish = () => cancel.onCancel(undefined);
    async function* body(): AsyncGenerator<Buffer> {
      try {
        for (;;) {
          const chunk = chunks.shift();
          if (chunk) {
            buffered -= chunk.length;
            if (controller?.paused && buffered < HIGH_WATER_BYTES) controller.resume();
            yield chunk;
          } else if (failure) throw failure;
          else if (ended) return;
          else await new Promise<void>((r) => (wake = r));
        }
      } finally {
        if (!ended && !failure) controller?.abort(new Error('the rest of the answer was not wanted'));
      }
    }
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
          const iterator = body();
          resolve({
            statusCode,
            headers: flatten(headers),
            body: iterator,
            dump: async () => {
              for await (const chunk of iterator) void chunk;
            },
          });
        },
        onResponseData(c, chunk) {
          chunks.push(chunk);
          buffered += chunk.length;
          if (buffered >= HIGH_WATER_BYTES) c.pause();
          notify();
        },
        onResponseEnd() {
          ended = true;
          finish();
          notify();
        },
        onResponseError(_c, err) {
          failure = err;
          finish();
          reject(err); // no effect once resolved: the body's reader gets it
          notify();
        },
      },
    );
  });
}

function flatten(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}
