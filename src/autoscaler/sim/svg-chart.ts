/**
 * A hand-written SVG line chart for the simulation: viewers and capacity on the left axis, replicas
 * on the right, time along the bottom. No dependencies; the output opens in any browser.
 */

export interface Series {
  label: string;
  color: string;
  /** Values per point; drawn against the left axis unless `rightAxis`. */
  values: readonly number[];
  rightAxis?: boolean;
  dashed?: boolean;
}

export interface ChartSpec {
  title: string;
  subtitle: string;
  /** X values in seconds. */
  timesS: readonly number[];
  series: readonly Series[];
  leftLabel: string;
  rightLabel: string;
  /** When set, the right axis is the left one times this (replicas = capacity ÷ pod capacity), so both lines compare. */
  rightScale?: number;
  /** Shaded spans on the time axis (seconds), e.g. a scheduled event. */
  spans?: ReadonlyArray<{ fromS: number; toS: number; label: string }>;
}

const WIDTH = 960;
const HEIGHT = 480;
const MARGIN = { left: 80, right: 70, top: 60, bottom: 70 };

function niceMax(value: number): number {
  if (value <= 0) return 1;
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * magnitude >= value) return step * magnitude;
  return 10 * magnitude;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function formatCount(value: number): string {
  if (!Number.isInteger(value)) return value.toFixed(1);
  if (value >= 1_000_000) return `${value / 1_000_000}M`;
  if (value >= 1000) return `${value / 1000}k`;
  return String(value);
}

export function renderChart(spec: ChartSpec): string {
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const maxT = Math.max(...spec.timesS);
  const minT = Math.min(...spec.timesS);
  const leftValues = spec.series.flatMap((s) => (s.rightAxis ? (spec.rightScale !== undefined ? s.values.map((v) => v / spec.rightScale!) : []) : s.values));
  const leftMax = niceMax(Math.max(...leftValues));
  const rightMax = spec.rightScale !== undefined
    ? leftMax * spec.rightScale
    : niceMax(Math.max(...spec.series.filter((s) => s.rightAxis).flatMap((s) => s.values)));
  const x = (t: number) => MARGIN.left + ((t - minT) / (maxT - minT || 1)) * plotW;
  const yL = (v: number) => MARGIN.top + plotH - (v / leftMax) * plotH;
  const yR = (v: number) => MARGIN.top + plotH - (v / rightMax) * plotH;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`);
  out.push(`<text x="${MARGIN.left}" y="24" font-size="16" font-weight="bold">${escapeXml(spec.title)}</text>`);
  out.push(`<text x="${MARGIN.left}" y="42" fill="#555">${escapeXml(spec.subtitle)}</text>`);
  for (const span of spec.spans ?? []) {
    out.push(`<rect x="${x(span.fromS).toFixed(1)}" y="${MARGIN.top}" width="${(x(span.toS) - x(span.fromS)).toFixed(1)}" height="${plotH}" fill="#f3eccc"/>`);
    out.push(`<text x="${(x(span.fromS) + 4).toFixed(1)}" y="${MARGIN.top + 14}" fill="#8a7a2a">${escapeXml(span.label)}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const y = MARGIN.top + plotH - (i / 5) * plotH;
    out.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y}" y2="${y}" stroke="#e4e4e4"/>`);
    out.push(`<text x="${MARGIN.left - 8}" y="${y + 4}" text-anchor="end">${formatCount((leftMax * i) / 5)}</text>`);
    out.push(`<text x="${MARGIN.left + plotW + 8}" y="${y + 4}">${formatCount((rightMax * i) / 5)}</text>`);
  }
  const tickEveryS = [60, 120, 300, 600, 900, 1800, 3600, 7200].find((step) => step >= (maxT - minT) / 10) ?? 7200;
  for (let t = Math.ceil(minT / tickEveryS) * tickEveryS; t <= maxT; t += tickEveryS) {
    out.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH + 5}" stroke="#333"/>`);
    out.push(`<text x="${x(t)}" y="${MARGIN.top + plotH + 20}" text-anchor="middle">${t / 60} min</text>`);
  }
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  out.push(`<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(spec.leftLabel)}</text>`);
  out.push(`<text transform="translate(${WIDTH - 16} ${MARGIN.top + plotH / 2}) rotate(90)" text-anchor="middle">${escapeXml(spec.rightLabel)}</text>`);
  for (const s of spec.series) {
    const y = s.rightAxis ? yR : yL;
    const path = s.values.map((v, i) => `${i === 0 ? 'M' : 'L'}${x(spec.timesS[i]!).toFixed(1)},${y(v).toFixed(1)}`).join('');
    out.push(`<path d="${path}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
  }
  spec.series.forEach((s, i) => {
    const lx = MARGIN.left + i * 200;
    const ly = HEIGHT - 22;
    out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${lx + 30}" y="${ly}">${escapeXml(s.label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
