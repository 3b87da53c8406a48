/// <reference lib="dom" />
// A small time-series chart (uPlot), made once and fed new data on every render.
import { html } from 'htm/preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface Series {
  label: string;
  stroke: string;
  values: (number | null)[];
}

export function Chart({ title, times, series, id }: { title: string; times: number[]; series: Series[]; id: string }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = [times, ...series.map((s) => s.values)] as uPlot.AlignedData;
  useEffect(() => {
    if (!box.current) return;
    plot.current = new uPlot(
      {
        width: Math.max(160, box.current.clientWidth),
        height: 110,
        legend: { show: false },
        scales: { x: { time: true } },
        axes: [
          { size: 24, font: '10px system-ui' },
          { size: 36, font: '10px system-ui' },
        ],
        series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.stroke, width: 1.5, spanGaps: true }))],
      },
      data,
      box.current,
    );
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => plot.current?.setData(data));
  const last = series.map((s) => {
    const v = [...s.values].reverse().find((x) => x !== null);
    return `${s.label} ${v === undefined || v === null ? '–' : v.toFixed(v < 10 ? 2 : 0)}`;
  });
  return html`<div class="chart" data-testid=${id} data-points=${times.length}>
    <h4>${title}: <span class="muted">${last.join(' · ')}</span></h4>
    <div ref=${box}></div>
  </div>`;
}
