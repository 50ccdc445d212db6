// Sessions: the caller's sessions, newest first, a page at a time (GET /api/sessions?limit=&continuation=).

import * as api from './api.js';
import { backendClass, backendOrder, datetime, h, plural, usd } from './dom.js';

export const PAGE_SIZE = 20;
// Continuation tokens only go forward: the tokens of the pages before this one, to go back.
const pages = { stack: [], current: null };

function row(summary) {
  const backends = backendOrder(Object.keys(summary.backends || {}));
  const id = summary.session_id;
  const imported = summary.turns - Object.values(summary.backends || {}).reduce((a, b) => a + b, 0);
  return h('li', { 'data-testid': 'session-row', 'data-session-id': id, class: 'session-row' },
    h('a', { href: `#/session/${encodeURIComponent(id)}`, class: 'session-link' },
      h('span', { class: 'session-id' }, id),
      h('span', { class: 'muted' }, `Last active ${datetime(summary.last_active)}`)),
    h('ul', { class: 'chips', 'aria-label': 'Turns by backend' },
      backends.map((b) => h('li', { class: `badge ${backendClass(b)}` }, `${b} ${summary.backends[b]}`)),
      imported > 0 ? h('li', { class: 'badge b-imported' }, `imported ${imported}`) : null),
    h('p', { class: 'row-meta' },
      `${plural(summary.turns, 'turn')} · ${usd(summary.cost)}`,
      summary.switches ? ` · ${plural(summary.switches, 'switch', 'es')}` : '',
      summary.fallbacks ? ` · ${plural(summary.fallbacks, 'fallback')}` : ''));
}

export async function render(main, move) {
  if (move === 'first') { pages.stack = []; pages.current = null; }
  if (move === 'next' && pages.next) { pages.stack.push(pages.current); pages.current = pages.next; }
  if (move === 'previous' && pages.stack.length) pages.current = pages.stack.pop();
  const answer = await api.sessions(pages.current, PAGE_SIZE);
  pages.next = answer.continuation;
  const number = pages.stack.length + 1;
  const list = answer.sessions.length
    ? h('ol', { 'data-testid': 'session-list', class: 'session-list' }, answer.sessions.map(row))
    : h('div', { 'data-testid': 'session-list', class: 'empty' },
      h('p', {}, number === 1 ? 'No sessions yet. Start one with POST /api/chat.' : 'No more sessions.'));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Session pages' },
    h('button', { type: 'button', disabled: pages.stack.length === 0, 'data-move': 'previous' }, '← Newer'),
    h('span', { class: 'muted' }, `Page ${number}`),
    h('button', { type: 'button', disabled: !answer.continuation, 'data-move': 'next' }, 'Older →'));
  pager.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-move]');
    if (button && !button.disabled) render(main, button.dataset.move).then(() => main.querySelector('h1').focus(), (error) => main.dispatchEvent(new CustomEvent('failed', { detail: error })));
  });
  main.replaceChildren(h('section', { class: 'sessions', 'aria-labelledby': 'sessions-h' },
    h('h1', { id: 'sessions-h', tabindex: '-1' }, 'Sessions'),
    h('p', { class: 'muted' }, 'Newest first.'),
    list, pager));
}
