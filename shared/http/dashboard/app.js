// The dashboard's entry point: a hash router over three views, the sign-in / function-key prompt, and errors shown
// as the API words them. Performance marks: dashboard:start, dashboard:data, dashboard:rendered (first view).

import * as api from './api.js';
import { h } from './dom.js';
import * as overview from './overview.js';
import * as sessions from './sessions.js';
import * as transcript from './transcript.js';

performance.mark('dashboard:start');
const main = document.getElementById('main');
let firstRender = true;
let lastOverview = null; // {period, data}: re-drawn at the new width on resize, without asking the API again

function route() {
  const [path, query = ''] = window.location.hash.replace(/^#\/?/, '').split('?');
  const params = new URLSearchParams(query);
  const [view, ...rest] = path.split('/');
  if (view === 'session' && rest.length) return { view: 'session', id: decodeURIComponent(rest.join('/')) };
  if (view === 'sessions') return { view: 'sessions' };
  return { view: 'overview', period: params.get('period') || '30' };
}

function markNav(view) {
  for (const link of document.querySelectorAll('[data-nav]')) {
    const current = link.dataset.nav === view || (view === 'session' && link.dataset.nav === 'sessions');
    if (current) link.setAttribute('aria-current', 'page'); else link.removeAttribute('aria-current');
  }
}

function showError(error, retry) {
  const status = !(error instanceof api.ApiError) ? 'The dashboard itself failed'
    : error.status ? `The API answered ${error.status}` : 'The API could not be reached';
  const details = [
    error.code ? h('div', {}, h('dt', {}, 'Code'), h('dd', {}, h('code', {}, error.code))) : null,
    error.field ? h('div', {}, h('dt', {}, 'Field'), h('dd', {}, h('code', {}, error.field))) : null,
    error.correlationId ? h('div', {}, h('dt', {}, 'Correlation id'), h('dd', {}, h('code', {}, error.correlationId))) : null,
  ];
  main.replaceChildren(h('section', { class: 'error-page', 'aria-labelledby': 'error-h' },
    h('h1', { id: 'error-h', tabindex: '-1' }, 'Something went wrong'),
    h('div', { class: 'error', role: 'alert', 'data-testid': 'error' },
      h('p', { class: 'error-status' }, status),
      h('p', { class: 'error-message', 'data-testid': 'error-message' }, error.message),
      h('dl', { class: 'error-details' }, details)),
    h('p', { class: 'actions' },
      h('button', { type: 'button', onclick: retry }, 'Try again'),
      h('a', { href: '#/overview' }, 'Back to the overview'))));
}

function askForKey(refused) {
  const input = h('input', { id: 'key', name: 'key', type: 'password', autocomplete: 'off', spellcheck: 'false', required: true });
  const form = h('form', { class: 'key-form', 'data-testid': 'key-form' },
    h('label', { for: 'key' }, 'Function key'), input,
    h('button', { type: 'submit' }, 'Use this key'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (!input.value.trim()) return;
    api.functionKey.set(input.value.trim());
    showForget();
    show();
  });
  main.replaceChildren(h('section', { class: 'auth', 'aria-labelledby': 'auth-h' },
    h('h1', { id: 'auth-h', tabindex: '-1' }, 'A function key is needed'),
    refused ? h('p', { class: 'error', role: 'alert' }, 'The API refused the function key (401). Check it and try again.') : null,
    h('p', {}, 'This app is not behind App Service Authentication, so its API asks for a function key ',
      '(Azure portal: the function app → App keys). It is kept only in this browser tab (sessionStorage) and sent ',
      'as the x-functions-key header to this site alone.'),
    form));
  input.focus();
}

function askToSignIn() {
  main.replaceChildren(h('section', { class: 'auth', 'aria-labelledby': 'auth-h' },
    h('h1', { id: 'auth-h', tabindex: '-1' }, 'Sign in'),
    h('p', {}, 'Sign in to see your conversations.'),
    h('p', {}, h('a', { class: 'button', href: api.loginUrl() }, 'Sign in with Microsoft Entra ID'))));
  main.querySelector('h1').focus();
}

function showForget() {
  const button = document.getElementById('forget-key');
  button.hidden = !api.functionKey.get();
}

async function show() {
  const target = route();
  // A period changed with the arrow keys keeps the focus on the period, not on the heading.
  const onPeriod = document.activeElement?.name === 'period';
  markNav(target.view);
  main.setAttribute('aria-busy', 'true');
  const title = { overview: 'Overview', sessions: 'Sessions', session: 'Session' }[target.view];
  document.title = `${title} · LLM router dashboard`;
  try {
    if (target.view === 'overview') {
      const data = await overview.render(main, target.period);
      lastOverview = { period: target.period, data };
    } else if (target.view === 'sessions') {
      await sessions.render(main, 'first');
    } else {
      await transcript.render(main, target.id);
    }
    if (firstRender) {
      performance.mark('dashboard:rendered');
      performance.measure('dashboard:first-render', 'dashboard:start', 'dashboard:rendered');
    } else {
      (onPeriod && main.querySelector('input[name=period]:checked') || main.querySelector('h1'))?.focus();
    }
  } catch (error) {
    if (!(error instanceof api.ApiError)) {
      showError(error, show);
      console.warn(error);
    } else if (error.status === 401) {
      if ((await api.whyUnauthorized()) === 'login') askToSignIn();
      else askForKey(Boolean(api.functionKey.get()));
    } else {
      showError(error, show);
      if (!firstRender) main.querySelector('h1')?.focus();
    }
  } finally {
    main.removeAttribute('aria-busy');
    firstRender = false;
  }
}

main.addEventListener('failed', (event) => showError(event.detail, show));
document.getElementById('forget-key').addEventListener('click', () => {
  api.functionKey.clear();
  showForget();
  show();
});

let resizeTimer = null;
let lastWidth = main.clientWidth;
window.addEventListener('resize', () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(() => {
    if (main.clientWidth === lastWidth || route().view !== 'overview' || !lastOverview) return;
    lastWidth = main.clientWidth;
    overview.render(main, lastOverview.period, lastOverview.data);
  }, 150);
});

window.addEventListener('hashchange', show);
showForget();
api.signedInUser().then((user) => {
  if (!user) return;
  const who = document.getElementById('who');
  who.textContent = `Signed in as ${user}`;
  who.hidden = false;
});
show();
