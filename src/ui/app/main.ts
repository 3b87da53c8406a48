/// <reference lib="dom" />
// The dashboard: every service (replicas, autoscaling, its serving over the last minutes, its
// groups as they are split), the events, a member's log, and with an admin key apply, scale and
// delete. Everything comes from the control API, polled; the log follows as it is written.
import { html } from 'htm/preact';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { Applied, ServiceRecord } from '../../core/control.js';
import type { ServiceEvent } from '../../core/group.js';
import type { HistoryPoint } from '../../core/serving.js';
import { api, ApiError, adminKey, followLog, setAdminKey } from './api.js';
import { Chart } from './chart.js';
import { Group } from './group.js';

const POLL_MS = 1000;

/** Calls `load` now and every `ms`, keeping its last answer (and the last refusal). */
function usePolled<T>(load: () => Promise<T>, ms: number): { value?: T; error?: ApiError } {
  const [state, setState] = useState<{ value?: T; error?: ApiError }>({});
  useEffect(() => {
    let live = true;
    const tick = () =>
      load().then(
        (value) => live && setState({ value }),
        (error: unknown) =>
          live &&
          setState((s) => ({ ...s, error: error instanceof ApiError ? error : new ApiError(0, String(error)) })),
      );
    void tick();
    const timer = setInterval(tick, ms);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, []);
  return state;
}

function App() {
  const services = usePolled(() => api<{ items: ServiceRecord[] }>('GET', '/services'), POLL_MS);
  const history = usePolled(() => api<{ models: Record<string, HistoryPoint[]> }>('GET', '/history'), POLL_MS);
  const events = usePolled(() => api<{ items: ServiceEvent[] }>('GET', '/events'), POLL_MS);
  const [log, setLog] = useState<{ service: string; replica: number; member: number } | undefined>();
  const refused = services.error && (services.error.status === 401 || services.error.status === 403);
  return html`<header>
      <h1>Tandem</h1>
      <span class="muted">${services.value ? `${services.value.items.length} service(s)` : ''}</span>
      <${KeyInput} needed=${refused} />
    </header>
    <main>
      <div>
        ${refused ? html`<section class="card">${services.error!.message}</section>` : null}
        ${(services.value?.items ?? []).map(
          (record) =>
            html`<${Service}
              key=${record.name}
              record=${record}
              points=${history.value?.models[record.status?.servedName ?? ''] ?? []}
              onLog=${(replica: number, member: number) => setLog({ service: record.name, replica, member })}
            />`,
        )}
        <${Apply} />
      </div>
      <div>
        <section class="card">
          <h2>Events</h2>
          <ol class="events" data-testid="events">
            ${[...(events.value?.items ?? [])]
              .reverse()
              .slice(0, 100)
              .map(
                (e) =>
                  html`<li class=${e.warning ? 'warning' : ''}>
                    <span class="muted">${new Date(e.at).toLocaleTimeString()} </span>
                    ${e.service}${e.replica === undefined ? '' : `/${e.replica}`}: ${e.message}
                  </li>`,
              )}
          </ol>
        </section>
        ${log ? html`<${Log} key=${`${log.service}/${log.replica}/${log.member}`} ...${log} />` : null}
      </div>
    </main>`;
}

function KeyInput({ needed }: { needed?: boolean }) {
  const [text, setText] = useState(adminKey() ?? '');
  return html`<form
    class="row"
    onSubmit=${(e: Event) => {
      e.preventDefault();
      setAdminKey(text);
      location.reload();
    }}
  >
    <input
      type="password"
      placeholder=${needed ? 'admin API key needed' : 'admin API key'}
      value=${text}
      onInput=${(e: Event) => setText((e.target as HTMLInputElement).value)}
    />
    <button>use key</button>
  </form>`;
}

function Service({
  record,
  points,
  onLog,
}: {
  record: ServiceRecord;
  points: HistoryPoint[];
  onLog: (replica: number, member: number) => void;
}) {
  const s = record.status;
  const ready = s?.groups.filter((g) => g.phase === 'Ready').length ?? 0;
  const times = points.map((p) => p.at / 1000);
  const series = (label: string, stroke: string, pick: (p: HistoryPoint) => number | undefined) => ({
    label,
    stroke,
    values: points.map((p) => pick(p) ?? null),
  });
  const auto = s?.autoscaling;
  return html`<section class="card" data-testid=${`service-${record.name}`}>
    <h2>
      ${record.name} <span class="muted">serves ${s?.servedName}</span>
      ${record.deleting ? html` <span class="phase">deleting</span>` : null}
    </h2>
    <div class="row">
      <span data-testid="replicas">replicas ${ready}/${s?.replicas ?? '?'} ready</span>
      ${
        auto
          ? html`<span
              >autoscaling
              ${auto.minReplicas}–${auto.maxReplicas}${auto.last ? `; last ${auto.last.from}→${auto.last.to}: ${auto.last.reason}` : ''}</span
            >`
          : null
      }
      <${Scale} name=${record.name} replicas=${s?.replicas ?? 0} />
      <button
        onClick=${() => confirm(`Delete ${record.name}?`) && void api('DELETE', `/services/${encodeURIComponent(record.name)}`)}
      >
        delete
      </button>
    </div>
    <div class="charts">
      <${Chart}
        id="chart-requests"
        title="requests/s"
        times=${times}
        series=${[series('req', '#4263eb', (p) => p.requestsPerS), series('err', '#c92a2a', (p) => p.errorsPerS)]}
      />
      <${Chart}
        id="chart-ttft"
        title="time to first token (s)"
        times=${times}
        series=${[series('p50', '#12b886', (p) => p.ttftP50), series('p90', '#e67700', (p) => p.ttftP90)]}
      />
      <${Chart}
        id="chart-tokens"
        title="output tokens/s"
        times=${times}
        series=${[series('tok', '#7048e8', (p) => p.outputTokensPerS)]}
      />
      <${Chart}
        id="chart-queue"
        title="queued"
        times=${times}
        series=${[series('queue', '#868e96', (p) => p.queued)]}
      />
    </div>
    ${(s?.groups ?? []).map((g) => html`<${Group} key=${g.replica} service=${s} group=${g} onLog=${onLog} />`)}
  </section>`;
}

function Scale({ name, replicas }: { name: string; replicas: number }) {
  const [to, setTo] = useState(replicas);
  return html`<form
    class="row"
    onSubmit=${(e: Event) => {
      e.preventDefault();
      void api(
        'PUT',
        `/services/${encodeURIComponent(name)}/scale`,
        JSON.stringify({ replicas: to }),
        'application/json',
      );
    }}
  >
    <input
      type="number"
      min="0"
      value=${to}
      onInput=${(e: Event) => setTo(Number((e.target as HTMLInputElement).value))}
    />
    <button>scale</button>
  </form>`;
}

function Apply() {
  const [text, setText] = useState('');
  const [outcome, setOutcome] = useState<{ applied?: Applied[]; error?: ApiError }>({});
  const submit = async (e: Event) => {
    e.preventDefault();
    try {
      setOutcome({
        applied: (await api<{ applied: Applied[] }>('POST', '/services', text, 'application/yaml')).applied,
      });
    } catch (error) {
      setOutcome({ error: error instanceof ApiError ? error : new ApiError(0, String(error)) });
    }
  };
  return html`<section class="card">
    <h2>Apply</h2>
    <form onSubmit=${submit}>
      <textarea
        data-testid="apply-text"
        placeholder="InferenceService YAML (one or more documents)"
        value=${text}
        onInput=${(e: Event) => setText((e.target as HTMLTextAreaElement).value)}
      ></textarea>
      <button data-testid="apply">apply</button>
    </form>
    <div data-testid="apply-outcome">
      ${outcome.applied?.map((a) => html`<div>${a.name}: ${a.result}</div>`)}
      ${
        outcome.error
          ? html`<div>${outcome.error.message}</div>
              <ul class="problems">
                ${outcome.error.problems.map((p) => html`<li>${p}</li>`)}
              </ul>`
          : null
      }
    </div>
  </section>`;
}

function Log({ service, replica, member }: { service: string; replica: number; member: number }) {
  const [lines, setLines] = useState<string[]>([]);
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    const stop = new AbortController();
    followLog(service, replica, member, 200, (line) => setLines((l) => [...l.slice(-499), line]), stop.signal).catch(
      (err: unknown) => stop.signal.aborted || setError(String(err)),
    );
    return () => stop.abort();
  }, []);
  return html`<section class="card">
    <h2>${service} group ${replica} ${member === 0 ? 'leader' : `worker ${member}`}: log</h2>
    ${error ? html`<div class="problems">${error}</div>` : null}
    <pre class="log" data-testid="log">${lines.join('\n')}</pre>
  </section>`;
}

render(html`<${App} />`, document.getElementById('app')!);
