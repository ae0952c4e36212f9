/**
 * Hand-written SVG line charts on log–log axes: one line per system, so Roomcast and its peers
 * share the same axes.
 */
const WIDTH = 720;
const HEIGHT = 420;
const MARGIN = { left: 80, right: 150, top: 40, bottom: 56 };
const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];

function escapeXml(text) {
  return String(text).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]);
}

function logRange(values) {
  const positive = values.filter((v) => v > 0);
  if (positive.length === 0) return [1, 10];
  return [10 ** Math.floor(Math.log10(Math.min(...positive))), 10 ** Math.ceil(Math.log10(Math.max(...positive)))];
}

function shortNumber(value) {
  if (value >= 1e6) return `${value / 1e6}M`;
  if (value >= 1e3) return `${value / 1e3}k`;
  return String(value);
}

/**
 * @param {object} chart
 * @param {string} chart.title
 * @param {string} chart.xLabel
 * @param {string} chart.yLabel
 * @param {Array<{ name: string, points: Array<[number, number, boolean?]> }>} chart.series  a third
 *   element true marks a point whose load core saturated: drawn hollow, and the legend says so
 * @param {Array<{ name: string, points: Array<[number, number]>, dashed?: boolean }>} [chart.guides] reference lines
 * @param {Array<{ y: number, label: string }>} [chart.thresholds] horizontal lines
 */
export function lineChart({ title, xLabel, yLabel, series, guides = [], thresholds = [] }) {
  const all = [...series, ...guides].flatMap((s) => s.points);
  const [xMin, xMax] = logRange(all.map(([x]) => x));
  const [yMin, yMax] = logRange([...all.map(([, y]) => y), ...thresholds.map((t) => t.y)]);
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const px = (x) => MARGIN.left + ((Math.log10(x) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin) || 1)) * plotW;
  const py = (y) => MARGIN.top + plotH - ((Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin) || 1)) * plotH;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2 - MARGIN.right / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  for (let decade = xMin; decade <= xMax * 1.0001; decade *= 10) {
    const x = px(decade).toFixed(1);
    parts.push(`<line x1="${x}" y1="${MARGIN.top}" x2="${x}" y2="${MARGIN.top + plotH}" stroke="#ddd"/>`,
      `<text x="${x}" y="${MARGIN.top + plotH + 18}" text-anchor="middle">${shortNumber(decade)}</text>`);
  }
  for (let decade = yMin; decade <= yMax * 1.0001; decade *= 10) {
    const y = py(decade).toFixed(1);
    parts.push(`<line x1="${MARGIN.left}" y1="${y}" x2="${MARGIN.left + plotW}" y2="${y}" stroke="#ddd"/>`,
      `<text x="${MARGIN.left - 8}" y="${Number(y) + 4}" text-anchor="end">${shortNumber(decade)}</text>`);
  }
  parts.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 14}" text-anchor="middle">${escapeXml(xLabel)}</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
  );
  for (const threshold of thresholds) {
    if (threshold.y < yMin || threshold.y > yMax) continue;
    const y = py(threshold.y).toFixed(1);
    parts.push(`<line x1="${MARGIN.left}" y1="${y}" x2="${MARGIN.left + plotW}" y2="${y}" stroke="#999" stroke-dasharray="6 4"/>`,
      `<text x="${MARGIN.left + plotW - 4}" y="${Number(y) - 4}" text-anchor="end" fill="#666">${escapeXml(threshold.label)}</text>`);
  }
  const legend = [];
  const draw = (s, color, dashed) => {
    const points = s.points.filter(([x, y]) => x > 0 && y > 0);
    if (points.length === 0) return;
    const path = points.map(([x, y], i) => `${i ? 'L' : 'M'}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(' ');
    parts.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="2"${dashed ? ' stroke-dasharray="4 4"' : ''}/>`);
    for (const [x, y, saturated] of dashed ? [] : points) {
      parts.push(saturated
        ? `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="4.5" fill="white" stroke="${color}" stroke-width="2"/>`
        : `<circle cx="${px(x).toFixed(1)}" cy="${py(y).toFixed(1)}" r="3" fill="${color}"/>`);
    }
    legend.push({ name: s.name, color, dashed });
  };
  guides.forEach((guide) => draw(guide, '#999', true));
  series.forEach((s, i) => draw(s, COLORS[i % COLORS.length], false));
  legend.forEach((entry, i) => {
    const y = MARGIN.top + 12 + i * 20;
    const x = MARGIN.left + plotW + 14;
    parts.push(`<line x1="${x}" y1="${y - 4}" x2="${x + 22}" y2="${y - 4}" stroke="${entry.color}" stroke-width="2"${entry.dashed ? ' stroke-dasharray="4 4"' : ''}/>`,
      `<text x="${x + 28}" y="${y}">${escapeXml(entry.name)}</text>`);
  });
  if (series.some((s) => s.points.some((point) => point[2]))) {
    const y = MARGIN.top + 12 + legend.length * 20;
    const x = MARGIN.left + plotW + 14;
    parts.push(`<circle cx="${x + 11}" cy="${y - 4}" r="4.5" fill="white" stroke="#333" stroke-width="2"/>`,
      `<text x="${x + 28}" y="${y}">load core saturated</text>`);
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
