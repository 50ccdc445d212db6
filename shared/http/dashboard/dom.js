// DOM and formatting helpers. Every text goes in as a text node: nothing from the API is ever parsed as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(node, props, children) {
  for (const [name, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An HTML element: h('p', {class: 'x'}, 'text', child, [more]). */
export const h = (tag, props, ...children) => fill(document.createElement(tag), props, children);

/** An SVG element, same signature. */
export const s = (tag, props, ...children) => fill(document.createElementNS(SVG_NS, tag), props, children);

let ids = 0;
export const uid = (prefix) => `${prefix}-${++ids}`;

/** Replace an element's content. */
export function mount(node, ...children) {
  node.replaceChildren();
  return fill(node, {}, children);
}

/** Tell screen readers what just happened (a polite live region). */
export function announce(text) {
  const region = document.getElementById('announce');
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 50);
}

// ---- numbers, money, time ----------------------------------------------------------------------------------------

const integer = new Intl.NumberFormat('en-US');
export const int = (n) => integer.format(n ?? 0);

export function usd(value) {
  if (value === null || value === undefined) return '—';
  if (value === 0) return '$0';
  const abs = Math.abs(value);
  const digits = abs >= 1 ? 2 : abs >= 0.01 ? 4 : 6;
  const text = '$' + abs.toFixed(digits).replace(/(\.\d*?[1-9])0+$/, '$1').replace(/\.0+$/, '');
  return value < 0 ? '−' + text : text;
}

export function ms(value) {
  if (value === null || value === undefined) return '—';
  return value >= 1000 ? `${(value / 1000).toFixed(value >= 10000 ? 0 : 1)} s` : `${Math.round(value)} ms`;
}

export const plural = (n, word, suffix = 's') => `${int(n)} ${word}${n === 1 ? '' : suffix}`;
export const pct = (part, whole) => (whole ? `${Math.round((100 * part) / whole)}%` : '0%');

const when = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
export function datetime(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso || '—' : when.format(date);
}

/** A UTC day, YYYY-MM-DD, `offset` days from `date`. */
export function utcDay(date, offset = 0) {
  const copy = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() + offset));
  return copy.toISOString().slice(0, 10);
}

// ---- backends: one colour each, the same in every chart and badge (contrast checked against both themes) -------

const KNOWN = ['local', 'cloud', 'foundry', 'apim'];
export const backendClass = (name) => `b-${KNOWN.includes(name) || name === 'imported' || name === 'cost' ? name : 'other'}`;
export const backendOrder = (names) =>
  [...names].sort((a, b) => (KNOWN.indexOf(a) + 1 || 99) - (KNOWN.indexOf(b) + 1 || 99) || a.localeCompare(b));
