// One conversation (GET /api/sessions/{id}): the transcript with each turn's routing, export, delete, and thumbs up or
// down per turn (POST /api/sessions/{id}/turns/{turn}/feedback; the state comes from each record's feedback.rating).

import * as api from './api.js';
import { announce, backendClass, datetime, h, int, ms, plural, usd } from './dom.js';

/** The OpenAI-format messages cut into turns as the service counts them: a user message and what follows it up to
 * the next one (anything before the first user message joins turn 1). System messages are shown apart. */
export function groupTurns(messages) {
  const system = [];
  const turns = [];
  let preamble = [];
  for (const message of messages || []) {
    if (message.role === 'system') system.push(message);
    else if (message.role === 'user') { turns.push([...preamble, message]); preamble = []; }
    else if (turns.length) turns[turns.length - 1].push(message);
    else preamble.push(message);
  }
  if (preamble.length) turns.push(preamble);
  return { system, turns };
}

const ROLE = { user: 'You', assistant: 'Assistant', tool: 'Tool', system: 'System' };

const text = (content) => (typeof content === 'string' ? content : content == null ? '' : JSON.stringify(content));

function message(m) {
  return h('div', { class: `msg ${m.role === 'user' ? 'user' : 'assistant'}` },
    h('p', { class: 'role' }, ROLE[m.role] || m.role),
    h('p', { class: 'text' }, text(m.content)));
}

function lineage(value) {
  if (!value) return null;
  if (value.kind === 'fork' && value.source_session_id) {
    return h('p', { class: 'lineage', 'data-testid': 'lineage' }, 'Forked from session ',
      h('a', { href: `#/session/${encodeURIComponent(value.source_session_id)}` }, value.source_session_id),
      value.source_turn ? ` at turn ${value.source_turn}` : '', '.');
  }
  if (value.kind === 'import') {
    return h('p', { class: 'lineage', 'data-testid': 'lineage' },
      `Imported${value.format ? ` from ${value.format} format` : ''}`,
      value.source_session_id ? ` (originally session ${value.source_session_id})` : '', '.');
  }
  return h('p', { class: 'lineage', 'data-testid': 'lineage' }, `Lineage: ${JSON.stringify(value)}`);
}

function feedbackButtons(sessionId, record) {
  const group = h('div', { class: 'feedback', role: 'group', 'aria-label': `Feedback on turn ${record.turn}`, 'data-testid': 'feedback' });
  const current = record.feedback?.rating || null;
  // Thumbs up and down, drawn with glyphs every system font has (an emoji font is not everywhere).
  const buttons = ['up', 'down'].map((rating) => h('button', {
    type: 'button', class: 'thumb', 'data-rating': rating, 'aria-pressed': String(current === rating),
    'aria-label': rating === 'up' ? 'Good answer' : 'Bad answer',
    'data-testid': `feedback-${rating}`,
  }, h('span', { 'aria-hidden': 'true' }, rating === 'up' ? '✓ ' : '✗ '), rating === 'up' ? 'Good' : 'Bad'));
  group.append(...buttons);
  // One rating at a time; the buttons stay enabled (a disabled button would drop the keyboard focus).
  let pending = false;
  group.addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-rating]');
    if (!button || pending) return;
    pending = true;
    group.setAttribute('aria-busy', 'true');
    group.querySelector('.error')?.remove();
    try {
      const { rating } = await api.rate(sessionId, record.turn, button.dataset.rating);
      buttons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.rating === rating)));
      announce(`Turn ${record.turn} rated ${rating === 'up' ? 'good' : 'bad'}.`);
    } catch (error) {
      group.append(h('p', { class: 'error inline', role: 'alert', 'data-testid': 'feedback-error' },
        `Rating failed: ${error.message}`));
    } finally {
      pending = false;
      group.removeAttribute('aria-busy');
    }
  });
  return group;
}

function turn(sessionId, record, messages) {
  const markers = [];
  if (record.switched_from) {
    markers.push(h('p', { class: 'marker switch', 'data-testid': 'switch-marker' },
      `⇄ Switched from ${record.switched_from} to ${record.backend}`));
  }
  if (record.fallback_chain?.length) {
    const failed = record.fallback_chain.map((a) => `${a.backend} (${a.error})`).join(', ');
    markers.push(h('p', { class: 'marker fallback', 'data-testid': 'fallback-marker' },
      `↯ Fallback: ${failed} failed, answered by ${record.backend || 'none'}`));
  }
  const original = record.extra?.original;
  const badges = record.imported && !record.backend
    ? [h('span', { class: 'badge b-imported', 'data-testid': 'backend-badge' }, 'imported'),
      original?.backend ? h('span', { class: 'badge model', title: 'Where this turn first ran' },
        `first ran on ${original.backend}${original.model ? ` · ${original.model}` : ''}`) : null]
    : [h('span', { class: `badge ${backendClass(record.backend)}`, 'data-testid': 'backend-badge' }, record.backend || 'no backend'),
      h('span', { class: 'badge model', 'data-testid': 'model-badge' }, record.model || 'no model')];
  const meta = [
    ['Complexity', record.complexity === null || record.complexity === undefined ? '—' : Number(record.complexity).toFixed(2)],
    ['Reason', record.reason || '—'],
    ['Latency', ms(record.latency_ms)],
    ['Tokens', `${int(record.input_tokens)} in / ${int(record.output_tokens)} out`],
    ['Cost', usd(record.cost)],
  ];
  return h('li', {
    class: 'turn', 'data-testid': 'turn', 'data-turn': record.turn, 'data-backend': record.backend || '',
    'data-model': record.model || '',
  },
  markers,
  h('div', { class: 'turn-head' },
    h('h2', {}, `Turn ${record.turn}`), badges,
    h('span', { class: 'muted when' }, datetime(record.completed_at))),
  (messages || []).map(message),
  h('dl', { class: 'turn-meta' }, meta.map(([label, value]) => h('div', {}, h('dt', {}, label), h('dd', {}, value)))),
  feedbackButtons(sessionId, record));
}

function download(name, document_) {
  const blob = new Blob([JSON.stringify(document_, null, 2)], { type: 'application/json' });
  const href = URL.createObjectURL(blob);
  const link = h('a', { href, download: name, class: 'visually-hidden' }, name);
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
}

function confirmDelete(id) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { 'aria-labelledby': 'confirm-h', 'aria-describedby': 'confirm-p', 'data-testid': 'confirm-delete' },
      h('h2', { id: 'confirm-h' }, 'Delete this session?'),
      h('p', { id: 'confirm-p' }, `Session ${id}, its transcript and its records are erased. This cannot be undone.`),
      h('div', { class: 'actions' },
        h('button', { type: 'button', value: 'cancel', 'data-testid': 'cancel-delete' }, 'Cancel'),
        h('button', { type: 'button', value: 'delete', class: 'danger', 'data-testid': 'confirm-delete-button' }, 'Delete')));
    dialog.addEventListener('click', (event) => {
      const button = event.target.closest('button');
      if (button) dialog.close(button.value);
    });
    dialog.addEventListener('close', () => { dialog.remove(); resolve(dialog.returnValue === 'delete'); });
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector('button').focus();
  });
}

export async function render(main, id) {
  const view = await api.session(id);
  const { system, turns } = groupTurns(view.messages);
  const records = [...view.turns].sort((a, b) => a.turn - b.turn);
  const summary = view.summary || {};
  const status = h('div', { class: 'status', 'aria-live': 'polite' });

  const exportButton = h('button', { type: 'button', 'data-testid': 'export' }, 'Export JSON');
  exportButton.addEventListener('click', async () => {
    status.replaceChildren();
    try {
      download(`session-${id}.json`, await api.exportSession(id));
      announce('Export downloaded.');
    } catch (error) {
      status.replaceChildren(h('p', { class: 'error inline', role: 'alert' }, `Export failed: ${error.message}`));
    }
  });
  const deleteButton = h('button', { type: 'button', class: 'danger', 'data-testid': 'delete' }, 'Delete…');
  deleteButton.addEventListener('click', async () => {
    if (!(await confirmDelete(id))) { deleteButton.focus(); return; }
    status.replaceChildren();
    try {
      await api.deleteSession(id);
      announce(`Session ${id} deleted.`);
      window.location.hash = '#/sessions';
    } catch (error) {
      status.replaceChildren(h('p', { class: 'error inline', role: 'alert' }, `Delete failed: ${error.message}`));
      deleteButton.focus();
    }
  });

  main.replaceChildren(h('article', { class: 'session', 'aria-labelledby': 'session-h' },
    h('p', {}, h('a', { href: '#/sessions' }, '← Sessions')),
    h('h1', { id: 'session-h', tabindex: '-1' }, 'Session ', h('span', { class: 'session-id' }, view.session_id)),
    h('p', { class: 'muted' },
      `Started ${datetime(summary.created_at)} · last active ${datetime(summary.last_active)} · `,
      `${plural(summary.turns ?? records.length, 'turn')} · ${usd(summary.cost)}`,
      summary.switches ? ` · ${plural(summary.switches, 'switch', 'es')}` : '',
      summary.fallbacks ? ` · ${plural(summary.fallbacks, 'fallback')}` : ''),
    lineage(view.lineage),
    h('div', { class: 'actions' }, exportButton, deleteButton),
    status,
    system.length ? h('details', { class: 'system' }, h('summary', {}, `System prompt (${system.length})`), system.map(message)) : null,
    h('ol', { class: 'transcript', 'data-testid': 'transcript' },
      records.map((record, i) => turn(id, record, turns[record.turn - 1] || (records.length === turns.length ? turns[i] : []))))));
}
