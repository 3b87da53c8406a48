/// <reference lib="dom" />
// The dashboard's side of the control API: JSON requests with the admin key (kept for the tab's
// session) and a member's log read as server-sent events from a fetch (EventSource cannot send a key).

const KEY = 'tandem.adminKey';

export function adminKey(): string | null {
  return sessionStorage.getItem(KEY);
}

export function setAdminKey(key: string): void {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
}

/** A refusal from the control API: its status, message and (a refused spec) every problem. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems: string[] = [],
  ) {
    super(message);
  }
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const key = adminKey();
  return key ? { ...extra, authorization: `Bearer ${key}` } : extra;
}

export async function api<T>(method: string, path: string, body?: string, contentType?: string): Promise<T> {
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers: headers(contentType ? { 'content-type': contentType } : {}),
    ...(body === undefined ? {} : { body }),
  });
  const answer = (await res.json().catch(() => ({}))) as { error?: { message?: string; problems?: string[] } };
  if (!res.ok) throw new ApiError(res.status, answer.error?.message ?? `HTTP ${res.status}`, answer.error?.problems);
  return answer as T;
}

/** Calls `line` with each line of a member's log, its last `tail` first, until `signal`. */
export async function followLog(
  service: string,
  replica: number,
  member: number,
  tail: number,
  line: (text: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const query = new URLSearchParams({
    replica: String(replica),
    member: String(member),
    tail: String(tail),
    follow: 'true',
  });
  const res = await fetch(`/api/v1/services/${encodeURIComponent(service)}/logs?${query}`, {
    headers: headers(),
    signal,
  });
  if (!res.ok || !res.body) throw new ApiError(res.status, `the log answered HTTP ${res.status}`);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let end: number;
    while ((end = buffered.indexOf('\n\n')) >= 0) {
      const event = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (event.startsWith('data: ')) line(event.slice('data: '.length));
    }
  }
}
