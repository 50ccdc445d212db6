// Overview: the caller's analytics for a period (GET /api/analytics?from=&to=), as numbers, charts and a table.

import * as api from './api.js';
import { bars, columns, legend } from './charts.js';
import { backendClass, backendOrder, h, int, ms, pct, usd, utcDay } from './dom.js';

export const PERIODS = [
  { id: '7', label: '7 days', days: 7 },
  { id: '30', label: '30 days', days: 30 },
  { id: '90', label: '90 days', days: 90 },
  { id: 'all', label: 'All', days: null },
];

/** The UTC days of a period: {from, to} (both null for "all"). */
export function periodDays(id, now = new Date()) {
  const period = PERIODS.find((p) => p.id === id) || PERIODS[1];
  return period.days === null ? { from: null, to: null } : { from: utcDay(now, 1 - period.days), to: utcDay(now) };
}

/** Every day from `first` to `last` (YYYY-MM-DD, inclusive), so the charts show quiet days as gaps. */
function dayRange(first, last) {
  const days = [];
  for (let day = new Date(`${first}T00:00:00Z`); day.toISOString().slice(0, 10) <= last; day.setUTCDate(day.getUTCDate() + 1)) {
    days.push(day.toISOString().slice(0, 10));
    if (days.length > 3660) break;
  }
  return days;
}

/** Per-day series filled over the period; more than 120 days are summed per week (labelled by its first day). */
function series(daily, period) {
  if (!daily.length) return [];
  const byDay = new Map(daily.map((entry) => [entry.day, entry]));
  const first = period.from && period.from < daily[0].day ? period.from : daily[0].day;
  const last = period.to || daily[daily.length - 1].day;
  const days = dayRange(first, last).map((day) => {
    const entry = byDay.get(day);
    const turns = { ...(entry?.turns || {}) };
    const imported = (entry?.turns_total || 0) - Object.values(turns).reduce((a, b) => a + b, 0);
    if (imported > 0) turns.imported = imported;
    return { day, parts: turns, cost: entry?.cost || 0 };
  });
  if (days.length <= 120) return days;
  const weeks = [];
  days.forEach((day, i) => {
    if (i % 7 === 0) weeks.push({ day: day.day, parts: {}, cost: 0 });
    const week = weeks[weeks.length - 1];
    for (const [key, n] of Object.entries(day.parts)) week.parts[key] = (week.parts[key] || 0) + n;
    week.cost += day.cost;
  });
  return weeks;
}

function stat(label, value, testid, raw, note) {
  return h('div', { class: 'stat' },
    h('dt', {}, label),
    h('dd', {}, h('span', { 'data-testid': testid, 'data-value': raw ?? null, class: 'big' }, value), note || null));
}

const LABELS = { imported: 'imported' };

/** Render the overview into `main`; answers the analytics it showed (for re-rendering on resize). */
export async function render(main, periodId, data) {
  const period = periodDays(periodId);
  data ??= await api.analytics(period.from, period.to);
  const width = Math.max(260, Math.min(main.clientWidth || 600, 1100) - 34);
  const backends = backendOrder(new Set([
    ...Object.keys(data.routing_distribution || {}), ...Object.keys(data.latency_ms || {}),
    ...Object.keys(data.tokens || {}), ...Object.keys(data.cost || {}),
  ]));
  const turns = data.total_exchanges;
  const routed = Object.values(data.routing_distribution || {}).reduce((a, b) => a + b, 0);
  const saved = data.saved_vs_all_cloud;

  const picker = h('fieldset', { class: 'periods' },
    h('legend', {}, 'Period'),
    PERIODS.map((p) => h('label', { class: 'period' },
      h('input', { type: 'radio', name: 'period', value: p.id, checked: p.id === periodId,
        onchange: () => { window.location.hash = `#/overview?period=${p.id}`; } }),
      h('span', {}, p.label))));

  const rated = data.feedback || { up: 0, down: 0 };
  const stats = h('dl', { class: 'stats' },
    stat('Turns', String(turns), 'total-turns', turns),
    stat('Sessions', String(data.sessions ?? '—'), 'total-sessions', data.sessions),
    stat('Model switches', String(data.model_switches), 'model-switches', data.model_switches),
    stat('Fallbacks', String(data.fallbacks), 'fallbacks', data.fallbacks),
    stat('Total cost', usd(data.total_cost), 'total-cost', data.total_cost),
    stat(saved !== null && saved < 0 ? 'Extra vs all-cloud' : 'Saved vs all-cloud', usd(saved === null ? null : Math.abs(saved)),
      'saved-vs-all-cloud', saved,
      data.all_cloud_cost === null ? null : h('span', { class: 'note' }, `of ${usd(data.all_cloud_cost)} all-cloud`)),
    stat('Rated good', int(rated.up), 'rated-good', rated.up),
    stat('Rated bad', int(rated.down), 'rated-bad', rated.down));
  const basis = h('p', { class: 'basis' }, h('strong', {}, 'All-cloud basis: '),
    h('span', { 'data-testid': 'all-cloud-basis' }, data.all_cloud_basis || '—'));

  const routing = bars({
    title: 'Routing distribution',
    summary: routed
      ? backends.filter((b) => data.routing_distribution[b]).map((b) => `${b} ${data.routing_distribution[b]} turns (${pct(data.routing_distribution[b], routed)})`).join(', ') + '.'
      : 'No routed turns in this period.',
    testid: 'routing-chart', width, valueLabel: 'Turns',
    rows: backends.filter((b) => data.routing_distribution[b]).map((b) => ({
      key: b, label: b, value: data.routing_distribution[b],
      text: `${data.routing_distribution[b]} (${pct(data.routing_distribution[b], routed)})`,
    })),
  });

  const perBackend = h('div', { class: 'scroll', tabindex: '0', role: 'region', 'aria-label': 'Per backend, scrollable' },
    h('table', { 'data-testid': 'backend-table' },
      h('caption', {}, 'Per backend'),
      h('thead', {}, h('tr', {}, ['Backend', 'Turns', 'Latency mean', 'Latency p95', 'Input tokens', 'Output tokens', 'Cost']
        .map((label, i) => h('th', { scope: 'col', class: i ? 'num' : null }, label)))),
      h('tbody', {}, backends.length ? backends.map((b) => {
        const latency = data.latency_ms?.[b];
        const tokens = data.tokens?.[b];
        const cell = (field, raw, text) => h('td', { class: 'num', 'data-field': field, 'data-value': raw ?? null }, text);
        return h('tr', { 'data-testid': 'backend-row', 'data-backend': b },
          h('th', { scope: 'row' }, h('span', { class: `badge ${backendClass(b)}` }, b)),
          cell('turns', data.routing_distribution?.[b] ?? 0, int(data.routing_distribution?.[b] ?? 0)),
          cell('latency-mean', latency?.mean, ms(latency?.mean)),
          cell('latency-p95', latency?.p95, ms(latency?.p95)),
          cell('input-tokens', tokens?.input, int(tokens?.input)),
          cell('output-tokens', tokens?.output, int(tokens?.output)),
          cell('cost', data.cost?.[b], usd(data.cost?.[b] ?? 0)));
      }) : h('tr', {}, h('td', { colspan: '7' }, 'No turns in this period.')))));

  const days = series(data.daily || [], period);
  const stackKeys = backendOrder(new Set(days.flatMap((day) => Object.keys(day.parts))));
  const weekly = days.length > 1 && days[1].day > utcDay(new Date(`${days[0].day}T00:00:00Z`), 1);
  const unit = weekly ? 'week' : 'day';
  const totalTurns = (data.daily || []).reduce((sum, day) => sum + day.turns_total, 0);
  const perDay = columns({
    title: `Turns per ${unit} by backend`,
    summary: `${totalTurns} turns over ${days.length} ${unit}s (UTC)${days.length ? `, ${days[0].day} to ${days[days.length - 1].day}` : ''}.`,
    testid: 'turns-chart', days, keys: stackKeys, width, format: (n) => int(Math.round(n)), labels: LABELS,
  });
  const costDays = days.map((day) => ({ day: day.day, parts: { cost: day.cost } }));
  const costChart = columns({
    title: `Cost per ${unit}`,
    summary: `${usd(data.total_cost)} in total over ${days.length} ${unit}s (UTC).`,
    testid: 'cost-chart', days: costDays, keys: ['cost'], width, format: usd, labels: { cost: 'Cost' },
  });

  const heading = h('h1', { tabindex: '-1' }, 'Overview');
  main.replaceChildren(h('section', {
    class: 'overview', 'aria-labelledby': 'overview-h', 'data-from': period.from, 'data-to': period.to, 'data-period': periodId,
  },
  Object.assign(heading, { id: 'overview-h' }),
  picker,
  h('p', { class: 'muted' }, period.from ? `UTC days ${period.from} to ${period.to}.` : 'Everything you have.'),
  stats,
  basis,
  h('section', { class: 'panel', 'aria-labelledby': 'routing-h' }, h('h2', { id: 'routing-h' }, 'Routing'), routing, perBackend),
  h('section', { class: 'panel', 'aria-labelledby': 'time-h' }, h('h2', { id: 'time-h' }, 'Over time'),
    stackKeys.length ? legend(stackKeys, LABELS) : null, perDay, costChart)));
  return data;
}
