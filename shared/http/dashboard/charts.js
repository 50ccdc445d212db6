// Hand-made SVG charts. Each is a <figure>: a caption, the SVG (role="img", named by the caption and described by
// a summary) and, behind it, the same numbers as a table in a <details> (what a screen reader or a keyboard uses).

import { backendClass, h, s, uid } from './dom.js';

function figure({ title, summary, testid, width, height, draw, table }) {
  const captionId = uid('cap');
  const descId = uid('desc');
  const chart = s('svg', {
    viewBox: `0 0 ${width} ${height}`, width, height, role: 'img',
    'aria-labelledby': captionId, 'aria-describedby': descId, 'data-testid': testid, class: 'chart',
  }, draw());
  return h('figure', { class: 'figure' },
    h('figcaption', { id: captionId }, title),
    h('p', { id: descId, class: 'chart-summary' }, summary),
    chart,
    h('details', { class: 'chart-data' }, h('summary', {}, `${title}: data table`), table));
}

function dataTable(caption, head, rows) {
  return h('div', { class: 'scroll' }, h('table', {},
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, head.map((cell, i) => h('th', { scope: 'col', class: i ? 'num' : null }, cell)))),
    h('tbody', {}, rows.map((row) => h('tr', {}, row.map((cell, i) =>
      i ? h('td', { class: 'num' }, cell) : h('th', { scope: 'row' }, cell)))))));
}

/** Horizontal bars, one per row: [{label, value, text, key}] (key picks the colour). */
export function bars({ title, summary, testid, rows, width, valueLabel }) {
  const rowHeight = 34;
  const labelWidth = Math.min(110, Math.round(width * 0.3));
  const textWidth = 96;
  const height = Math.max(rows.length, 1) * rowHeight + 8;
  const max = Math.max(1, ...rows.map((row) => row.value));
  const span = Math.max(10, width - labelWidth - textWidth);
  const draw = () => rows.length === 0
    ? s('text', { x: 0, y: 24, class: 'axis' }, 'No turns in this period')
    : rows.map((row, i) => {
      const y = i * rowHeight + 6;
      const length = Math.max(row.value > 0 ? 2 : 0, (row.value / max) * span);
      return s('g', {},
        s('text', { x: 0, y: y + 17, class: 'label' }, row.label),
        s('rect', { x: labelWidth, y, width: length, height: rowHeight - 12, rx: 3, class: backendClass(row.key) },
          s('title', {}, `${row.label}: ${row.text}`)),
        s('text', { x: labelWidth + length + 6, y: y + 17, class: 'value' }, row.text));
    });
  const table = dataTable(title, ['Backend', valueLabel], rows.map((row) => [row.label, row.text]));
  return figure({ title, summary, testid, width, height, draw, table });
}

const short = (day) => day.slice(5); // MM-DD

/**
 * Columns per day, stacked by key: days [{day, parts: {key: n}}], keys in stack order. `format` writes a value.
 * Days are continuous (the caller fills the gaps), oldest first.
 */
export function columns({ title, summary, testid, days, keys, width, format, labels }) {
  const height = 200;
  const bottom = 22;
  const top = 10;
  const totals = days.map((day) => keys.reduce((sum, key) => sum + (day.parts[key] || 0), 0));
  const max = Math.max(...totals, 0);
  const left = Math.max(28, 7 * Math.max(format(max).length, format(0).length) + 10);
  const plotWidth = Math.max(10, width - left - 4);
  const plotHeight = height - top - bottom;
  const step = plotWidth / Math.max(days.length, 1);
  const barWidth = Math.max(1, step * 0.72);
  const scale = max > 0 ? plotHeight / max : 0;
  const ticks = days.length <= 1 ? [0] : [0, Math.floor((days.length - 1) / 2), days.length - 1];
  const draw = () => [
    s('line', { x1: left, x2: width, y1: top + plotHeight, y2: top + plotHeight, class: 'axis-line' }),
    s('line', { x1: left, x2: width, y1: top, y2: top, class: 'grid' }),
    s('text', { x: left - 6, y: top + 4, 'text-anchor': 'end', class: 'axis' }, format(max)),
    s('text', { x: left - 6, y: top + plotHeight, 'text-anchor': 'end', class: 'axis' }, format(0)),
    days.map((day, i) => {
      let y = top + plotHeight;
      const x = left + i * step + (step - barWidth) / 2;
      const parts = keys.filter((key) => day.parts[key]).map((key) => {
        const size = day.parts[key] * scale;
        y -= size;
        return s('rect', { x, y, width: barWidth, height: Math.max(size, 0.5), class: backendClass(key) });
      });
      const tip = keys.filter((key) => day.parts[key]).map((key) => `${labels[key] || key} ${format(day.parts[key])}`);
      return s('g', {}, s('title', {}, `${day.day}: ${tip.join(', ') || 'none'}`), parts);
    }),
    [...new Set(ticks)].map((i) => s('text', {
      x: left + i * step + step / 2, y: height - 6, 'text-anchor': i === 0 && days.length > 1 ? 'start' : i === days.length - 1 && days.length > 1 ? 'end' : 'middle', class: 'axis',
    }, days[i] ? short(days[i].day) : '')),
  ];
  const shown = days.filter((_, i) => totals[i] > 0);
  const head = ['Day (UTC)', ...keys.map((key) => labels[key] || key), ...(keys.length > 1 ? ['Total'] : [])];
  const rows = shown.map((day) => [
    day.day, ...keys.map((key) => format(day.parts[key] || 0)),
    ...(keys.length > 1 ? [format(keys.reduce((sum, key) => sum + (day.parts[key] || 0), 0))] : []),
  ]);
  const table = rows.length ? dataTable(title, head, rows) : h('p', {}, 'No turns in this period.');
  return figure({ title, summary, testid, width, height, draw, table });
}

/** A legend for stacked charts. */
export const legend = (keys, labels) => h('ul', { class: 'legend' },
  keys.map((key) => h('li', {}, h('span', { class: `swatch ${backendClass(key)}`, 'aria-hidden': 'true' }), labels[key] || key)));
