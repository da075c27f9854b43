/* switchboard · Agent console — plain ES2020, no build step, no dependencies.
 *
 * Serves two pages: login.html (body[data-page=login]) and console.html (body[data-page=console]).
 * Every piece of text that comes from the server is rendered with textContent (never innerHTML);
 * the only markup parsed from strings is the constant icon set below.
 */
'use strict';

(() => {
  // ───────────────────────────── tiny DOM helpers ─────────────────────────────
  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  /** h('div', {class: 'x', text: 'hi', onclick: fn, 'data-foo': 1}, child, [children], 'text') */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k === 'testid') el.dataset.testid = v;
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (v === true) el.setAttribute(k, '');
        else el.setAttribute(k, String(v));
      }
    }
    append(el, children);
    return el;
  }
  function append(el, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(el, c);
      else if (c instanceof Node) el.appendChild(c);
      else el.appendChild(document.createTextNode(String(c)));
    }
  }

  // ───────────────────────────── icons (constant markup) ─────────────────────────────
  const SVG_OPEN = '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round" aria-hidden="true" focusable="false">';
  const ICONS = {
    inbox: '<polyline points="22 12 16 12 14 15 10 15 8 12 2 12"/><path d="M5.45 5.11L2 12v6a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2v-6l-3.45-6.89A2 2 0 0 0 16.76 4H7.24a2 2 0 0 0-1.79 1.11z"/>',
    user: '<path d="M20 21v-2a4 4 0 0 0-4-4H8a4 4 0 0 0-4 4v2"/><circle cx="12" cy="7" r="4"/>',
    userPlus: '<path d="M16 21v-2a4 4 0 0 0-4-4H5a4 4 0 0 0-4 4v2"/><circle cx="8.5" cy="7" r="4"/><line x1="20" y1="8" x2="20" y2="14"/><line x1="23" y1="11" x2="17" y2="11"/>',
    layers: '<polygon points="12 2 2 7 12 12 22 7 12 2"/><polyline points="2 17 12 22 22 17"/><polyline points="2 12 12 17 22 12"/>',
    checkCircle: '<path d="M22 11.08V12a10 10 0 1 1-5.93-9.14"/><polyline points="22 4 12 14.01 9 11.01"/>',
    check: '<polyline points="20 6 9 17 4 12"/>',
    search: '<circle cx="11" cy="11" r="7"/><line x1="21" y1="21" x2="16.65" y2="16.65"/>',
    email: '<rect x="2" y="4" width="20" height="16" rx="2"/><polyline points="22 6 12 13 2 6"/>',
    telegram: '<path d="M21.6 3.2 2.9 10.4c-1 .4-1 1.5 0 1.8l4.6 1.5 1.8 5.5c.2.7 1.1.9 1.6.4l2.6-2.4 4.8 3.5c.6.5 1.5.1 1.7-.6l3.3-15.6c.2-.9-.7-1.6-1.5-1.3z" fill="currentColor" stroke="none"/><path d="m7.6 13.7 9.6-6.1-7.2 7.7" stroke="var(--tg-fold, #fff)" stroke-width="1.3" fill="none"/>',
    twitter: '<path fill="currentColor" stroke="none" d="M17.75 3h3.07l-6.7 7.66L22 21h-6.17l-4.83-6.32L5.47 21H2.4l7.17-8.2L2 3h6.33l4.37 5.78L17.75 3zm-1.08 16.2h1.7L7.4 4.72H5.58l11.09 14.48z"/>',
    web: '<path d="M21 11.5a8.38 8.38 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.38 8.38 0 0 1-3.8-.9L3 21l1.9-5.7a8.38 8.38 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.38 8.38 0 0 1 3.8-.9h.5a8.48 8.48 0 0 1 8 8v.5z"/>',
    bolt: '<polygon points="13 2 3 14 12 14 11 22 21 10 12 10 13 2"/>',
    note: '<path d="M12 20h9"/><path d="M16.5 3.5a2.121 2.121 0 0 1 3 3L7 19l-4 1 1-4L16.5 3.5z"/>',
    reply: '<polyline points="9 14 4 9 9 4"/><path d="M20 20v-7a4 4 0 0 0-4-4H4"/>',
    transfer: '<polyline points="15 10 20 15 15 20"/><path d="M4 4v7a4 4 0 0 0 4 4h12"/>',
    clock: '<circle cx="12" cy="12" r="9"/><polyline points="12 7 12 12 15.5 14"/>',
    bot: '<rect x="4" y="8" width="16" height="12" rx="3"/><path d="M12 8V4.5"/><circle cx="12" cy="3.5" r="1"/><circle cx="9" cy="14" r="1" fill="currentColor"/><circle cx="15" cy="14" r="1" fill="currentColor"/><path d="M2 13v3M22 13v3"/>',
    flag: '<path d="M4 15s1-1 4-1 5 2 8 2 4-1 4-1V3s-1 1-4 1-5-2-8-2-4 1-4 1z"/><line x1="4" y1="22" x2="4" y2="15"/>',
    info: '<circle cx="12" cy="12" r="9"/><line x1="12" y1="16" x2="12" y2="11"/><line x1="12" y1="8" x2="12.01" y2="8"/>',
    sidebar: '<rect x="3" y="4" width="18" height="16" rx="2"/><line x1="15" y1="4" x2="15" y2="20"/>',
    logout: '<path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4"/><polyline points="16 17 21 12 16 7"/><line x1="21" y1="12" x2="9" y2="12"/>',
    clip: '<path d="M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48"/>',
    star: '<polygon points="12 2 15.09 8.26 22 9.27 17 14.14 18.18 21.02 12 17.77 5.82 21.02 7 14.14 2 9.27 8.91 8.26 12 2" fill="currentColor"/>',
    x: '<line x1="18" y1="6" x2="6" y2="18"/><line x1="6" y1="6" x2="18" y2="18"/>',
    plus: '<line x1="12" y1="5" x2="12" y2="19"/><line x1="5" y1="12" x2="19" y2="12"/>',
    keyboard: '<rect x="2" y="6" width="20" height="12" rx="2"/><path d="M6 10h.01M10 10h.01M14 10h.01M18 10h.01M7 14h10"/>',
    reopen: '<polyline points="1 4 1 10 7 10"/><path d="M3.51 15a9 9 0 1 0 2.13-9.36L1 10"/>',
    alert: '<path d="M10.29 3.86L1.82 18a2 2 0 0 0 1.71 3h16.94a2 2 0 0 0 1.71-3L13.71 3.86a2 2 0 0 0-3.42 0z"/><line x1="12" y1="9" x2="12" y2="13"/><line x1="12" y1="17" x2="12.01" y2="17"/>',
    arrowDown: '<line x1="12" y1="5" x2="12" y2="19"/><polyline points="19 12 12 19 5 12"/>',
    lock: '<rect x="4" y="11" width="16" height="10" rx="2"/><path d="M8 11V7a4 4 0 0 1 8 0v4"/>',
    file: '<path d="M14 2H6a2 2 0 0 0-2 2v16a2 2 0 0 0 2 2h12a2 2 0 0 0 2-2V8z"/><polyline points="14 2 14 8 20 8"/>',
    globe: '<circle cx="12" cy="12" r="9"/><line x1="3" y1="12" x2="21" y2="12"/><path d="M12 3a14 14 0 0 1 0 18a14 14 0 0 1 0-18z"/>',
  };
  const iconCache = new Map();
  function icon(name, cls) {
    let tpl = iconCache.get(name);
    if (!tpl) {
      tpl = document.createElement('template');
      tpl.innerHTML = SVG_OPEN + (ICONS[name] || '') + '</svg>'; // constant strings only
      iconCache.set(name, tpl);
    }
    const svg = tpl.content.firstChild.cloneNode(true);
    svg.setAttribute('class', 'ico' + (cls ? ' ' + cls : ''));
    return svg;
  }
  function hydrateIcons(root = document) {
    for (const el of $$('[data-icon]', root)) {
      if (el.firstChild) continue;
      el.appendChild(icon(el.dataset.icon));
    }
  }

  // ───────────────────────────── language ─────────────────────────────
  // Every word the agent reads comes from a catalogue: /agent/static/i18n/<code>.json, one per
  // language, listed in languages.json (README: "Console languages"). tr(key, {name: …}) fills
  // {name}; numbers are formatted for the language. A value may be an object of plural forms
  // ({"one": …, "other": …}) chosen by Intl.PluralRules on the parameter `n`. A key missing from a
  // catalogue falls back to English and is remembered in I18N.missing (the browser tests assert
  // it stays empty).
  const I18N = { code: 'en', intl: 'en', cat: {}, fallback: {}, langs: [], missing: new Set(), fmt: null };
  window.switchboardI18n = I18N;
  const LANG_STORE = 'sb_lang';
  function lookup(key) {
    let v = I18N.cat[key];
    if (v === undefined) {
      v = I18N.fallback[key];
      I18N.missing.add(key);
    }
    return v;
  }
  function fill(v, params) {
    if (v && typeof v === 'object') {
      const n = params && typeof params.n === 'number' ? params.n : 0;
      v = v[I18N.fmt.plural.select(n)] ?? v.other;
    }
    if (!params) return String(v);
    return String(v).replace(/\{(\w+)\}/g, (m, k) => {
      if (!(k in params)) return m;
      return typeof params[k] === 'number' ? fmtNum(params[k]) : String(params[k]);
    });
  }
  function tr(key, params) {
    const v = lookup(key);
    return v === undefined ? key : fill(v, params);
  }
  /** A message as text and DOM nodes: a parameter given as a Node (a name, an id — data, not
   *  words of the interface) is put where its {placeholder} is, in the language's word order. */
  function trParts(key, params) {
    const v = lookup(key);
    const texts = {};
    for (const [k, x] of Object.entries(params)) if (!(x instanceof Node)) texts[k] = x;
    const filled = v === undefined ? key : fill(v, texts);
    return filled.split(/\{(\w+)\}/).map((part, i) => (i % 2 ? (params[part] instanceof Node ? params[part] : `{${part}}`) : part));
  }
  /** Data inside a sentence (a person's name, a title): marked so it is never taken for interface text. */
  const dataSpan = (text) => h('span', { translate: 'no', text });
  /** A catalogue word when there is one (vocabulary from the server), else `dflt` unchanged. */
  function tOr(key, dflt, params) {
    const v = I18N.cat[key] ?? I18N.fallback[key];
    return v === undefined ? dflt : fill(v, params);
  }
  const fmtNum = (n) => (I18N.fmt ? I18N.fmt.num.format(n) : String(n));
  async function fetchJSON(url) {
    const res = await fetch(url, { credentials: 'same-origin', cache: 'no-cache' });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return res.json();
  }
  /** The language to show: the agent's saved choice, else the browser's languages in order. */
  function pickLang(saved) {
    const codes = I18N.langs.map((l) => l.code);
    const wanted = [saved, ...(navigator.languages || [navigator.language])].filter(Boolean);
    for (const w of wanted) {
      const lw = String(w).toLowerCase();
      const exact = I18N.langs.find((l) => l.code.toLowerCase() === lw || (l.match || []).some((m) => lw === m.toLowerCase()));
      if (exact) return exact.code;
      const pre = I18N.langs.find((l) => (l.match || [l.code]).some((m) => lw.startsWith(m.toLowerCase() + '-')) || lw.split('-')[0] === l.code.toLowerCase());
      if (pre) return pre.code;
    }
    return codes.includes('en') ? 'en' : codes[0];
  }
  async function setLang(code) {
    if (!I18N.langs.length) I18N.langs = (await fetchJSON('/agent/static/i18n/languages.json')).languages;
    const entry = I18N.langs.find((l) => l.code === code) || I18N.langs[0];
    const [cat, fallback] = await Promise.all([
      fetchJSON(`/agent/static/i18n/${entry.code}.json`),
      entry.code === 'en' || Object.keys(I18N.fallback).length ? Promise.resolve(null) : fetchJSON('/agent/static/i18n/en.json'),
    ]);
    I18N.cat = cat;
    if (entry.code === 'en') I18N.fallback = cat;
    else if (fallback) I18N.fallback = fallback;
    I18N.code = entry.code;
    I18N.intl = entry.intl || entry.code;
    const loc = I18N.intl;
    I18N.fmt = {
      num: new Intl.NumberFormat(loc),
      plural: new Intl.PluralRules(loc),
      rel: new Intl.RelativeTimeFormat(loc, { numeric: 'auto', style: 'short' }),
      abs: new Intl.DateTimeFormat(loc, { weekday: 'short', year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' }),
      day: new Intl.DateTimeFormat(loc, { weekday: 'long', month: 'short', day: 'numeric' }),
      shortDate: new Intl.DateTimeFormat(loc, { month: 'short', day: 'numeric' }),
      dur: typeof Intl.DurationFormat === 'function' ? new Intl.DurationFormat(loc, { style: 'narrow' }) : null,
      units: Object.fromEntries(['day', 'hour', 'minute', 'second'].map((u) => [u, new Intl.NumberFormat(loc, { style: 'unit', unit: u, unitDisplay: 'narrow' })])),
      list: new Intl.ListFormat(loc, { style: 'narrow', type: 'unit' }),
    };
    document.documentElement.lang = loc;
    try { localStorage.setItem(LANG_STORE, entry.code); } catch { /* storage off */ }
    translateStatic(document);
    return entry.code;
  }
  /** Markup text: data-i18n="key" (text), data-i18n-title / -placeholder / -aria-label (attributes). */
  function translateStatic(root) {
    for (const el of $$('[data-i18n]', root)) el.textContent = tr(el.dataset.i18n);
    for (const attr of ['title', 'placeholder', 'aria-label']) {
      for (const el of $$(`[data-i18n-${attr}]`, root)) el.setAttribute(attr, tr(el.getAttribute(`data-i18n-${attr}`)));
    }
    for (const sel of $$('select.lang-select', root)) {
      sel.replaceChildren(...I18N.langs.map((l) => h('option', { value: l.code, text: l.name, lang: l.intl || l.code })));
      sel.value = I18N.code;
    }
  }

  // ───────────────────────────── vocabulary ─────────────────────────────
  const CHANNELS = { telegram: 'telegram', twitter: 'twitter', email: 'email', web: 'web' }; // channel → icon
  const PRIORITY_RANK = { urgent: 0, high: 1, normal: 2, low: 3 };
  const OPEN_STATUSES = ['new', 'open', 'pending_user'];
  const SLA_RANK = { ok: 0, warning: 1, breached: 2 };
  const SLA_WARN_AT = 0.75; // mirrors config.yaml sla.warn_at; the server's own `sla` wins when it is worse
  const VIEWS = ['queue', 'mine', 'all', 'resolved'];
  /** A word of the vocabulary (priority, status, topic, user language…) in the agent's language;
   *  an unknown value (a new status the catalogue does not have yet) shows as it is. */
  const vocab = (kind, v) => (v === null || v === undefined || v === '' ? '' : tOr(`${kind}.${v}`, humanize(v)));
  const priorityLabel = (p) => vocab('priority', p);
  const statusLabel = (st) => vocab('status', st);
  const topicLabel = (tp) => vocab('topic', tp);
  const langLabel = (l) => vocab('lang.short', l);
  const langName = (l) => vocab('lang.name', l);

  const channelInfo = (c) => ({ label: CHANNELS[c] ? tr(`channel.${c}`) : (c || tr('channel.unknown')), icon: CHANNELS[c] || 'web' });
  function channelBadge(ch, withLabel) {
    const info = channelInfo(ch);
    return h('span', { class: `chan chan-${ch || 'unknown'}`, title: info.label },
      icon(info.icon), withLabel ? h('span', { class: 'chan-label', text: info.label }) : null);
  }

  // ───────────────────────────── time ─────────────────────────────
  let clockSkew = 0; // server time − local time (ms), from the Date header of /me
  const now = () => Date.now() + clockSkew;
  const ms = (iso) => (iso ? Date.parse(iso) : NaN);
  const absTime = (iso) => (iso ? I18N.fmt.abs.format(new Date(ms(iso))) : '');

  /** A duration in the agent's language (Intl.DurationFormat, "3m 05s" / "3分钟5秒"). */
  function durParts(parts) {
    const f = I18N.fmt;
    if (f.dur) return f.dur.format(parts);
    return f.list.format(Object.entries(parts).map(([k, v]) => f.units[k.replace(/s$/, '')].format(v)));
  }
  function dur(delta, coarse = false) {
    const s = Math.max(0, Math.floor(delta / 1000));
    if (s < 60) return durParts({ seconds: s });
    const m = Math.floor(s / 60);
    if (m < 10 && !coarse) return durParts({ minutes: m, seconds: s % 60 });
    if (m < 60) return durParts({ minutes: m });
    const hh = Math.floor(m / 60);
    if (hh < 24) return durParts({ hours: hh, minutes: m % 60 });
    const d = Math.floor(hh / 24);
    return durParts({ days: d, hours: hh % 24 });
  }
  /** "3 minutes ago" / "3分钟前" (Intl.RelativeTimeFormat); older than a week: the date. */
  function rel(iso) {
    const tm = ms(iso);
    if (Number.isNaN(tm)) return '';
    const r = I18N.fmt.rel;
    const d = now() - tm;
    if (d < -60000) {
      const ahead = Math.round(-d / 60000);
      return ahead < 60 ? r.format(ahead, 'minute') : ahead < 1440 ? r.format(Math.round(ahead / 60), 'hour') : r.format(Math.round(ahead / 1440), 'day');
    }
    const s = Math.floor(d / 1000);
    if (s < 45) return r.format(0, 'second');
    const m = Math.max(1, Math.floor(s / 60));
    if (m < 60) return r.format(-m, 'minute');
    const hh = Math.floor(m / 60);
    if (hh < 24) return r.format(-hh, 'hour');
    const days = Math.floor(hh / 24);
    if (days < 7) return r.format(-days, 'day');
    return I18N.fmt.shortDate.format(new Date(tm));
  }
  /** <time> that keeps itself relative (refreshed every 20 s) with the absolute time on hover. */
  function timeEl(iso, cls) {
    if (!iso) return h('span', { class: cls || 'ts' });
    return h('time', { class: cls || 'ts', datetime: iso, 'data-rel': iso, title: absTime(iso), text: rel(iso) });
  }
  function refreshRelTimes() {
    for (const el of $$('[data-rel]')) {
      const t = rel(el.dataset.rel);
      if (el.textContent !== t) el.textContent = t;
    }
  }

  /** SLA of a ticket right now → {state, data, text, title, cls} */
  function slaInfo(t) {
    const server = t.sla || 'ok';
    if (t.status === 'resolved' || t.status === 'closed') {
      const at = t.resolved_at || t.updated_at;
      return { data: server, cls: 'done', text: statusLabel(t.status), title: at ? tr('sla.doneAt', { status: statusLabel(t.status), at: absTime(at) }) : '' };
    }
    if (t.status === 'pending_user') {
      return { data: server, cls: 'paused', text: tr('sla.waiting'), title: tr('sla.paused') };
    }
    const first = !t.first_responded_at;
    const dueIso = first ? t.first_response_due : t.resolution_due;
    const due = ms(dueIso);
    if (Number.isNaN(due)) return { data: server, cls: server === 'ok' ? 'none' : server, text: server === 'ok' ? '' : tr(`sla.state.${server}`), title: '' };
    const n = now();
    const left = due - n;
    let state = 'ok';
    if (left <= 0) state = 'breached';
    else {
      const start = ms(t.created_at);
      if (!Number.isNaN(start) && due > start && (n - start) / (due - start) >= SLA_WARN_AT) state = 'warning';
    }
    if (SLA_RANK[server] > SLA_RANK[state]) state = server;
    const kind = first ? 'firstResponse' : 'resolution';
    let text;
    if (left > 0 && state === 'breached') text = tr('sla.state.breached');
    else text = left > 0 ? tr('sla.left', { dur: dur(left) }) : tr('sla.breachedAgo', { dur: dur(-left, true) });
    return { data: state, cls: state, text, title: tr(`sla.due.${kind}`, { at: absTime(dueIso) }), kind };
  }

  // ───────────────────────────── misc helpers ─────────────────────────────
  function initials(name) {
    const s = String(name || '?').trim();
    if (!s) return '?';
    if (/[\u3400-\u9fff]/.test(s[0])) return s[0];
    const parts = s.replace(/^@/, '').split(/[\s._-]+/).filter(Boolean);
    return ((parts[0] || '?')[0] + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase();
  }
  function hue(str) {
    let x = 0;
    for (const ch of String(str || '')) x = (x * 31 + ch.codePointAt(0)) >>> 0;
    return x % 360;
  }
  function avatar(name, cls) {
    const el = h('span', { class: 'avatar' + (cls ? ' ' + cls : ''), title: name || '', text: initials(name) });
    el.style.setProperty('--h', String(hue(name)));
    return el;
  }
  function contactLabel(c) {
    if (!c) return tr('contact.unknown');
    if (c.name) return c.name;
    const ids = c.identities || [];
    const withLabel = ids.find((i) => i.label);
    if (withLabel) return withLabel.label;
    if (ids[0]) return ids[0].source_id;
    return tr('contact.numbered', { id: c.id });
  }
  function fmtSize(n) {
    if (!(n >= 0)) return '';
    const unit = (v, u, digits) => new Intl.NumberFormat(I18N.intl, { style: 'unit', unit: u, unitDisplay: 'short', maximumFractionDigits: digits }).format(v);
    if (n < 1024) return unit(n, 'byte', 0);
    if (n < 1024 * 1024) return unit(n / 1024, 'kilobyte', n < 10240 ? 1 : 0);
    return unit(n / 1024 / 1024, 'megabyte', 1);
  }
  const debounce = (fn, wait) => {
    let t = null;
    return (...a) => { clearTimeout(t); t = setTimeout(() => fn(...a), wait); };
  };
  /** At most one call per `wait` ms, the last one always made (a steady flood still updates). */
  const throttle = (fn, wait) => {
    let t = null;
    let last = 0;
    return () => {
      if (t) return;
      t = setTimeout(() => { t = null; last = Date.now(); fn(); }, Math.max(0, last + wait - Date.now()));
    };
  };
  const humanize = (s) => String(s || '').replace(/_/g, ' ');
  /** Text with [REDACTED:kind] tokens shown as locked chips (still textContent only). */
  function richText(text) {
    const frag = document.createDocumentFragment();
    const re = /\[REDACTED:([a-z_]+)\]/g;
    const s = String(text ?? '');
    let last = 0;
    let m;
    while ((m = re.exec(s))) {
      if (m.index > last) frag.appendChild(document.createTextNode(s.slice(last, m.index)));
      frag.appendChild(h('span', { class: 'redacted', title: tr('redacted.title') },
        icon('lock'), tr('redacted.label', { kind: tOr(`redacted.kind.${m[1]}`, humanize(m[1])) })));
      last = m.index + m[0].length;
    }
    if (last < s.length) frag.appendChild(document.createTextNode(s.slice(last)));
    return frag;
  }

  // ───────────────────────────── toasts ─────────────────────────────
  function toast(message, opts = {}) {
    const { kind = 'info', title = null, action = null, data = false, timeout = kind === 'error' ? 8000 : kind === 'success' ? 4000 : 6000 } = opts;
    const box = $('#toasts');
    if (!box) return null;
    const ico = { error: 'alert', warning: 'clock', breach: 'alert', success: 'check', urgent: 'alert', info: 'info' }[kind] || 'info';
    const el = h('div', { class: `toast toast-${kind}`, testid: 'toast', role: kind === 'error' ? 'alert' : 'status' },
      h('span', { class: 'toast-ico' }, icon(ico)),
      h('div', { class: 'toast-body' },
        title ? h('div', { class: 'toast-title', text: title }) : null,
        h('div', { class: 'toast-msg', translate: data ? 'no' : null }, message)), // text, or parts with names as nodes
      action ? h('button', { type: 'button', class: 'toast-action', text: action.label, onclick: () => { action.run(); close(); } }) : null,
      h('button', { type: 'button', class: 'toast-close', 'aria-label': tr('toast.dismiss'), onclick: () => close() }, icon('x')));
    let timer = null;
    function close() {
      clearTimeout(timer);
      el.classList.add('leaving');
      setTimeout(() => el.remove(), 180);
    }
    const arm = () => { if (timeout) timer = setTimeout(close, timeout); };
    el.addEventListener('mouseenter', () => clearTimeout(timer));
    el.addEventListener('mouseleave', arm);
    box.appendChild(el);
    while (box.children.length > 4) box.firstChild.remove();
    arm();
    return el;
  }

  // ═════════════════════════════ LOGIN PAGE ═════════════════════════════
  function readCookie(name) {
    for (const part of document.cookie.split(';')) {
      const p = part.trim();
      if (p.startsWith(name + '=')) {
        try { return decodeURIComponent(p.slice(name.length + 1)); } catch { return p.slice(name.length + 1); }
      }
    }
    return '';
  }

  function initLogin() {
    const form = $('#login-form');
    const email = $('#email');
    const password = $('#password');
    const csrf = $('#csrf');
    const errBox = $('#login-error');
    const submit = $('#login-submit');
    const params = new URLSearchParams(location.search);
    const KNOWN = ['invalid', 'locked', 'disabled', 'csrf', 'expired'];
    const err = params.get('error');
    const showError = () => {
      const k = KNOWN.includes(err) ? err : 'failed';
      errBox.replaceChildren(icon('alert'), h('div', null, h('strong', { text: tr(`login.error.${k}.head`) }), ' ', tr(`login.error.${k}.tail`)));
    };
    if (err) {
      showError();
      errBox.dataset.error = err;
      errBox.hidden = false;
      if (err === 'locked' || err === 'disabled') errBox.classList.add('login-error-strong');
    }
    let remembered = '';
    try { remembered = sessionStorage.getItem('sb_login_email') || ''; } catch { /* storage off */ }
    if (remembered) {
      email.value = remembered;
      if (err === 'invalid') password.focus();
    }
    csrf.value = readCookie('sb_login_csrf');

    form.addEventListener('submit', (e) => {
      csrf.value = readCookie('sb_login_csrf');
      const problems = [];
      if (!email.value.trim()) problems.push(email);
      if (!password.value) problems.push(password);
      for (const el of [email, password]) el.classList.toggle('invalid', problems.includes(el));
      if (problems.length) {
        e.preventDefault();
        problems[0].focus();
        return;
      }
      try { sessionStorage.setItem('sb_login_email', email.value.trim()); } catch { /* ignore */ }
      submit.disabled = true;
      submit.classList.add('busy');
      $('.btn-label', submit).textContent = tr('login.signingIn');
    });
    $('#lang-select').addEventListener('change', (e) => {
      setLang(e.target.value).then(() => { if (err) showError(); }).catch((x) => console.warn('switchboard: language', x));
    });
    // a page restored from the back/forward cache must not keep the busy button
    window.addEventListener('pageshow', () => {
      submit.disabled = false;
      submit.classList.remove('busy');
      $('.btn-label', submit).textContent = tr('login.submit');
      csrf.value = readCookie('sb_login_csrf');
    });
  }

  // ═════════════════════════════ CONSOLE ═════════════════════════════
  const S = {
    me: null,
    view: 'queue',
    q: '',
    filters: { priority: new Set(), channel: new Set(), status: '', topic: '', assignee: '', since: '', until: '', incident: '' },
    known: new Map(), // number → T (latest known)
    list: { key: '', numbers: [], next: null, total: null, loading: false, loaded: false, seq: 0 }, // the server's pages
    matches: new Map(), // number → where the search matched ({field, text, marks})
    counts: null, // /api/counts
    sel: new Set(), // selected ticket numbers (bulk actions)
    selAll: false, // "all matching the search" selected
    incidents: [],
    cursor: null, // number under the keyboard cursor
    openNumber: null,
    detail: null, // {ticket, messages, audit, other_tickets}
    detailCache: new Map(),
    mode: 'reply',
    drafts: new Map(), // `${number}:${mode}` → text
    unread: new Set(),
    flash: new Map(), // number → timestamp until which the row flashes
    agents: null,
    canned: null,
    intents: null,
    busy: new Set(), // actions in flight, `${number}:${action}`
    loaded: false,
    ws: null,
    wsAttempts: 0,
    wsEverOpen: false,
    lastFullLoad: 0,
    showDetails: true,
  };

  // ───────────────────────────── API ─────────────────────────────
  /** An API failure. The server sends a stable `code` (with `params`) beside its English `error`;
   *  `detail` is what the agent reads: the catalogue's `error.<code>`, the English text only for a
   *  code this console does not know yet. */
  class ApiError extends Error {
    constructor(status, detail, code = null, params = null) {
      super(detail || `HTTP ${status}`);
      this.status = status;
      this.code = code;
      this.params = params || {};
      this.detail = code ? tOr(`error.${code}`, detail, localParams(this.params)) : detail;
    }
  }
  /** Parameters of an error message that are themselves vocabulary (a status, a priority…). */
  function localParams(p) {
    const out = { ...p };
    for (const k of ['status', 'from', 'to', 'priority']) if (typeof p[k] === 'string') out[k] = k === 'priority' ? priorityLabel(p[k]) : statusLabel(p[k]);
    if (typeof p.topic === 'string') out.topic = topicLabel(p.topic);
    if (typeof p.channel === 'string') out.channel = channelInfo(p.channel).label;
    return out;
  }
  function detailText(data) {
    if (!data) return '';
    const d = data.detail ?? data.error ?? data.message;
    if (typeof d === 'string') return d;
    if (Array.isArray(d)) return d.map((x) => (x && (x.msg || x.message)) || JSON.stringify(x)).join('; ');
    if (d && typeof d === 'object') return d.msg || d.message || JSON.stringify(d);
    return '';
  }
  let redirecting = false;
  function toLogin() {
    if (redirecting) return;
    redirecting = true;
    location.assign('/agent/login');
  }
  async function api(path, { method = 'GET', body, raw = false } = {}) {
    const opts = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin', cache: 'no-store' };
    if (method !== 'GET') {
      opts.headers['X-CSRF-Token'] = (S.me && S.me.csrf) || '';
      if (body !== undefined) {
        opts.headers['Content-Type'] = 'application/json';
        opts.body = JSON.stringify(body);
      }
    }
    let res;
    try {
      res = await fetch(path, opts);
    } catch (e) {
      throw new ApiError(0, tr('error.network'));
    }
    if (res.status === 401) {
      toLogin();
      throw new ApiError(401, tr('error.signed_out'));
    }
    if (raw) return res;
    let data = null;
    const text = await res.text();
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (!res.ok) throw new ApiError(res.status, detailText(data) || res.statusText || `HTTP ${res.status}`, data && data.code, data && data.params);
    return data;
  }
  const enc = encodeURIComponent;
  const tpath = (n, tail = '') => `/agent/api/tickets/${enc(n)}${tail}`;

  /** Shared error handling of agent actions: 403 → not allowed, 409 → server detail + refresh. */
  function actionError(err, number) {
    if (err.status === 401) return;
    if (err.status === 403) {
      toast(err.code ? err.detail : tr('error.forbidden'), { kind: 'error', title: tr('error.title.forbidden') });
    } else if (err.status === 409) {
      toast(err.code ? err.detail : tr('error.conflict'), { kind: 'warning', title: number ? tr('error.title.changed', { number }) : tr('error.title.conflict') });
      if (number) refreshTicket(number);
    } else if (err.status === 404) {
      toast(err.code ? err.detail : tr('error.not_found'), { kind: 'error', title: tr('error.title.not_found') });
      if (number) refreshTicket(number);
    } else {
      toast(err.code || !err.status ? err.detail : tr('error.generic'), { kind: 'error', title: err.status ? tr('error.title.status', { status: String(err.status) }) : tr('error.title.generic') });
    }
  }

  // ───────────────────────────── ticket store ─────────────────────────────
  const isOpenStatus = (t) => OPEN_STATUSES.includes(t.status);
  const mine = (t) => !!(t.assignee && S.me && t.assignee.id === S.me.id);
  const VIEW_PRED = {
    queue: (t) => (t.status === 'new' || t.status === 'open') && (!t.assignee || mine(t)),
    mine: (t) => mine(t) && isOpenStatus(t),
    all: (t) => isOpenStatus(t),
    resolved: (t) => t.status === 'resolved' || t.status === 'closed',
  };
  function cmpTickets(a, b) {
    const pr = (PRIORITY_RANK[a.priority] ?? 9) - (PRIORITY_RANK[b.priority] ?? 9);
    if (pr) return pr;
    const da = ms(a.first_response_due);
    const db = ms(b.first_response_due);
    const na = Number.isNaN(da);
    const nb = Number.isNaN(db);
    if (na !== nb) return na ? 1 : -1;
    if (!na && da !== db) return da - db;
    return String(a.number).localeCompare(String(b.number));
  }
  function cmpResolved(a, b) {
    return (ms(b.resolved_at || b.updated_at) || 0) - (ms(a.resolved_at || a.updated_at) || 0)
      || String(b.number).localeCompare(String(a.number));
  }
  /** Merge a ticket; `force` for pushes that may carry the same updated_at (SLA events). */
  function upsert(t, force = false) {
    if (!t || !t.number) return null;
    const old = S.known.get(t.number);
    if (old && !force) {
      const o = ms(old.updated_at);
      const n = ms(t.updated_at);
      if (!Number.isNaN(o) && !Number.isNaN(n) && n < o) return old; // stale
    }
    const merged = old ? { ...old, ...t } : t;
    if (old && t.last_message === undefined) merged.last_message = old.last_message;
    S.known.set(t.number, merged);
    if (S.detail && S.detail.ticket.number === t.number) S.detail.ticket = merged;
    const cached = S.detailCache.get(t.number);
    if (cached) cached.ticket = merged;
    return merged;
  }
  function passesFilters(t) {
    const f = S.filters;
    if (f.priority.size && !f.priority.has(t.priority)) return false;
    if (f.channel.size && !f.channel.has(t.channel)) return false;
    if (f.status && !f.status.split(',').includes(t.status)) return false;
    if (f.topic && !f.topic.split(',').includes(t.topic)) return false;
    if (f.assignee === 'me' && !mine(t)) return false;
    if (f.assignee === 'none' && t.assignee) return false;
    if (f.assignee && /^\d+$/.test(f.assignee) && !(t.assignee && String(t.assignee.id) === f.assignee)) return false;
    if (f.incident && String(t.incident_id || '') !== f.incident) return false;
    if (f.since && ms(t.created_at) < Date.parse(f.since)) return false;
    if (f.until && ms(t.created_at) >= Date.parse(f.until)) return false;
    return true;
  }
  function visibleTickets() {
    const pred = VIEW_PRED[S.view];
    const cmp = S.view === 'resolved' ? cmpResolved : cmpTickets;
    const inList = new Set(S.list.numbers);
    const lastNum = S.list.numbers[S.list.numbers.length - 1];
    const last = lastNum ? S.known.get(lastNum) : null;
    const out = [];
    for (const t of S.known.values()) {
      if (!pred(t) || !passesFilters(t)) continue;
      if (!inList.has(t.number)) {
        // not from the server's pages: a live arrival. Searches are the server's (full text);
        // otherwise show it when it sorts inside what is loaded (the next page brings the rest).
        if (S.q || !S.list.loaded) continue;
        if (S.list.next && last && cmp(t, last) > 0) continue;
      }
      out.push(t);
    }
    out.sort(cmp);
    return out;
  }

  // ───────────────────────────── loading ─────────────────────────────
  // The list is the server's: pages of the view (filters + search) in its order, fetched by keyset
  // cursor as the agent scrolls; live events update the rows already there and slot new tickets in
  // when they fall inside the loaded range. The counters are the server's too (SQL, not the length
  // of a list).
  const PAGE = 50;
  function listParams() {
    const p = new URLSearchParams({ view: S.view });
    if (S.q) p.set('q', S.q);
    if (S.filters.priority.size) p.set('priority', [...S.filters.priority].join(','));
    if (S.filters.channel.size) p.set('channel', [...S.filters.channel].join(','));
    for (const k of ['status', 'topic', 'assignee', 'since', 'until', 'incident']) if (S.filters[k]) p.set(k, S.filters[k]);
    return p;
  }
  function hasFilters() {
    return !!(S.q || S.filters.priority.size || S.filters.channel.size
      || ['status', 'topic', 'assignee', 'since', 'until', 'incident'].some((k) => S.filters[k]));
  }
  async function loadList(reset = true) {
    if (!reset && (S.list.loading || !S.list.next)) return;
    if (reset) {
      S.list = { key: listParams().toString(), numbers: [], next: null, total: null, loading: false, loaded: false, seq: S.list.seq + 1 };
      S.matches = new Map();
    }
    const seq = S.list.seq;
    S.list.loading = true;
    renderListEnd();
    const p = listParams();
    p.set('limit', String(PAGE));
    if (!reset) p.set('cursor', S.list.next);
    try {
      const data = await api(`/agent/api/tickets?${p}`);
      if (seq !== S.list.seq) return; // a newer view/search replaced this one
      const list = (data && data.tickets) || [];
      for (const t of list) {
        if (t.match) S.matches.set(t.number, t.match);
        delete t.match;
        upsert(t);
      }
      const have = new Set(S.list.numbers);
      for (const t of list) if (!have.has(t.number)) S.list.numbers.push(t.number);
      S.list.next = data.next || null;
      if (data.total !== null && data.total !== undefined) S.list.total = data.total;
      S.list.loaded = true;
      S.loaded = true;
    } finally {
      if (seq === S.list.seq) S.list.loading = false;
    }
    renderAll();
  }
  function maybeLoadMore() {
    const ul = $('#ticket-list');
    if (ul && S.list.next && !S.list.loading && ul.scrollTop + ul.clientHeight > ul.scrollHeight - 600) {
      loadList(false).catch((e) => actionError(e));
    }
  }
  const refreshCounts = throttle(async () => {
    try {
      S.counts = await api('/agent/api/counts');
      renderCounts();
    } catch (e) { if (e.status !== 401) console.warn('switchboard: counts', e); }
  }, 600); // a flood of events costs one count query per console every 0.6 s at most (throttled, not debounced)
  /** Everything again: counts, incidents, the current view from its first page. */
  async function refreshAll() {
    S.lastFullLoad = Date.now();
    refreshCounts();
    loadIncidents();
    await loadList(true);
    if (S.openNumber) refreshTicket(S.openNumber);
  }

  // ───────────────────────────── rendering: sidebar ─────────────────────────────
  function renderCounts() {
    const c = S.counts;
    for (const el of $$('[data-count]')) {
      const n = c ? c.views[el.dataset.count] : null;
      el.textContent = n === null || n === undefined ? '' : fmtNum(n);
      el.classList.toggle('zero', !n);
    }
    const urgentUnclaimed = c ? c.unclaimed_urgent : 0;
    const stats = $('#side-stats');
    if (stats && c) {
      const row = (cls, label, n, ico, onClick, testid) => h('button', { type: 'button', class: `stat ${cls}${n ? '' : ' zero'}`, onclick: onClick, testid },
        icon(ico), h('span', { class: 'stat-label', text: label }), h('span', { class: 'stat-n', text: fmtNum(n) }));
      stats.replaceChildren(
        row('stat-urgent', tr('stats.unclaimedUrgent'), urgentUnclaimed, 'alert', () => { setView('queue'); setFilter('priority', 'urgent', true); }, 'count-unclaimed-urgent'),
        row('stat-breached', tr('stats.slaBreached'), c.sla.breached, 'clock', () => setView('all'), 'count-sla-breached'),
        row('stat-warning', tr('stats.slaAtRisk'), c.sla.warning, 'clock', () => setView('all'), 'count-sla-warning'),
      );
    }
    document.title = urgentUnclaimed ? tr('page.titleCount', { n: urgentUnclaimed }) : tr('page.title');
    S.titleCount = urgentUnclaimed;
    for (const chip of $$('#filters .f-pri')) { // open tickets per priority
      const n = c && c.priority ? c.priority[chip.dataset.value] : null;
      let badge = $('.chip-n', chip);
      if (!badge) { badge = h('span', { class: 'chip-n' }); chip.appendChild(badge); }
      badge.textContent = n === null || n === undefined ? '' : fmtNum(n);
      chip.title = n === null || n === undefined ? '' : tr('filters.openCount', { n });
    }
    renderListMeta();
  }
  function renderListMeta() {
    const el = $('#list-total');
    if (!el) return;
    const n = hasFilters() ? S.list.total : (S.counts ? S.counts.views[S.view] : S.list.total);
    el.textContent = n === null || n === undefined ? '' : tr(hasFilters() ? 'list.matching' : 'list.tickets', { n });
    el.dataset.total = n === null || n === undefined ? '' : String(n);
    renderBulk();
  }

  function renderViewNav() {
    for (const b of $$('.view')) {
      const on = b.dataset.view === S.view;
      b.classList.toggle('active', on);
      b.setAttribute('aria-current', on ? 'page' : 'false');
    }
    $('#list-title').textContent = tr(`view.${S.view}`);
    $('#list-sub').textContent = tr(`view.${S.view}.sub`);
    for (const c of $$('#filters .chip')) {
      c.classList.toggle('on', S.filters[c.dataset.filter].has(c.dataset.value));
      c.setAttribute('aria-pressed', String(c.classList.contains('on')));
    }
    for (const k of ['status', 'topic', 'assignee', 'since', 'until']) {
      const el = $(`#f-${k}`);
      if (el && el.value !== S.filters[k]) el.value = S.filters[k];
    }
    renderIncidentBar();
  }

  // ───────────────────────────── rendering: list ─────────────────────────────
  const rowEls = new Map(); // number → <li>

  function rowSig(t) {
    const lm = t.last_message;
    return [t.updated_at, t.status, t.priority, t.topic, t.sla, t.assignee && t.assignee.id, lm && lm.at, lm && lm.text,
      S.unread.has(t.number), contactLabel(t.contact), t.contact && t.contact.vip, S.sel.has(t.number) || S.selAll,
      (t.tags || []).join(','), t.incident_id, JSON.stringify(S.matches.get(t.number) || null)].join('|');
  }
  /** A search snippet with the matched ranges marked (text nodes only, never HTML). */
  function markedText(m) {
    const out = [];
    let pos = 0;
    for (const [a, b] of m.marks || []) {
      if (a > pos) out.push(m.text.slice(pos, a));
      out.push(h('mark', { text: m.text.slice(a, b) }));
      pos = b;
    }
    out.push(m.text.slice(pos));
    return out;
  }
  const MATCH_FIELD = { contact: 'match.contact', identity: 'match.contact', subject: 'match.subject', tag: 'match.tag' };
  function buildRow(t) {
    const li = h('li', { class: 'row', role: 'option', testid: 'ticket-row', 'data-number': t.number });
    li.addEventListener('mousedown', (e) => { if (e.button === 0) e.preventDefault(); }); // keep focus where it is
    li.addEventListener('click', () => openTicket(t.number));
    fillRow(li, t);
    return li;
  }
  function fillRow(li, t) {
    li.dataset.priority = t.priority;
    li.dataset.status = t.status;
    li.dataset.sig = rowSig(t);
    const sla = slaInfo(t);
    const lm = t.last_message;
    const previewPrefix = lm && (lm.author_type === 'bot' || lm.author_type === 'agent') ? tr(`preview.${lm.author_type}`) : '';
    const vip = t.contact && t.contact.vip > 0;
    const match = S.q ? S.matches.get(t.number) : null;
    const checked = S.selAll || S.sel.has(t.number);
    li.classList.toggle('selected', checked);
    li.classList.toggle('unread', S.unread.has(t.number));
    li.classList.toggle('is-mine', mine(t));
    const box = h('input', { type: 'checkbox', class: 'row-check', testid: 'row-select', 'aria-label': tr('row.select', { number: t.number }), title: tr('row.selectHint') });
    box.checked = checked;
    box.addEventListener('click', (e) => { e.stopPropagation(); toggleSelect(t.number, box.checked); });
    li.replaceChildren(
      box,
      h('div', { class: 'row-l1' },
        h('span', { class: `pill pri pri-${t.priority}`, text: priorityLabel(t.priority) }),
        h('span', { class: 'row-num', text: t.number }),
        h('span', { class: 'row-topic', text: topicLabel(t.topic) }),
        t.status === 'new' ? h('span', { class: 'row-new', text: statusLabel('new') }) : null,
        t.status === 'pending_user' ? h('span', { class: 'row-pending', text: statusLabel('pending_user') }) : null,
        t.incident_id ? h('span', { class: 'row-incident', title: incidentTitle(t.incident_id), text: tr('row.incident') }) : null,
        ...(t.tags || []).slice(0, 3).map((g) => h('span', { class: 'row-tag', text: `#${g}` })),
        h('span', { class: 'spacer' }),
        h('span', { class: `sla sla-${sla.cls}`, testid: 'sla', 'data-sla': sla.data, title: sla.title, text: sla.text })),
      h('div', { class: 'row-l2' },
        channelBadge(t.channel),
        h('span', { class: 'row-contact', text: contactLabel(t.contact) }),
        vip ? h('span', { class: 'vip', title: tr('vip.level', { level: t.contact.vip }) }, icon('star'), t.contact.vip > 1 ? tr('vip.short', { level: t.contact.vip }) : tr('vip.badge')) : null,
        t.lang && t.lang !== 'en' ? h('span', { class: 'lang', text: langLabel(t.lang) }) : null,
        h('span', { class: 'spacer' }),
        timeEl(lm ? lm.at : t.updated_at, 'row-time')),
      h('div', { class: 'row-l3' },
        match ? h('span', { class: 'row-preview row-match', testid: 'match' }, MATCH_FIELD[match.field] ? h('b', { text: tr(MATCH_FIELD[match.field]) }) : null, markedText({ ...match, text: match.text.replace(/\s/g, ' ') }))
          : h('span', { class: 'row-preview' }, lm ? [previewPrefix ? h('b', { text: previewPrefix }) : null, richText(lm.text.replace(/\s+/g, ' '))] : h('i', { text: tr('row.noMessages') })),
        t.assignee ? avatar(t.assignee.name, 'avatar-xs' + (mine(t) ? ' avatar-me' : ''))
          : h('span', { class: 'unassigned', title: tr('assignee.none') })),
    );
  }

  function renderList() {
    const ul = $('#ticket-list');
    const list = visibleTickets();
    const nums = new Set(list.map((t) => t.number));
    for (const [n, el] of rowEls) {
      if (!nums.has(n)) { el.remove(); rowEls.delete(n); }
    }
    let prev = null;
    const nowMs = Date.now();
    for (const t of list) {
      let li = rowEls.get(t.number);
      if (!li) {
        li = buildRow(t);
        rowEls.set(t.number, li);
      } else if (li.dataset.sig !== rowSig(t)) {
        fillRow(li, t);
      }
      const fl = S.flash.get(t.number);
      li.classList.toggle('flash', !!fl && fl > nowMs);
      const expected = prev ? prev.nextSibling : ul.firstChild;
      if (expected !== li) ul.insertBefore(li, expected);
      prev = li;
    }
    // stray non-row children (empty states, the list's end) after the rows
    for (const el of Array.from(ul.children)) if (!el.dataset.number) el.remove();
    if (list.length) ul.appendChild(h('li', { class: 'list-end', id: 'list-end', testid: 'list-end' }));
    if (!list.length) {
      if (!S.list.loaded) {
        for (let i = 0; i < 7; i++) ul.appendChild(h('li', { class: 'row skeleton' }, h('div'), h('div'), h('div')));
      } else {
        const filtered = hasFilters();
        ul.appendChild(h('li', { class: 'list-empty' },
          icon(filtered ? 'search' : S.view === 'resolved' ? 'checkCircle' : 'inbox', 'empty-ico'),
          h('strong', { text: tr(filtered ? 'list.empty.filtered' : S.view === 'queue' ? 'list.empty.queue' : 'list.empty.other') }),
          h('span', { text: filtered ? tr('list.empty.filteredHint') : S.view === 'queue' ? tr('list.empty.queueHint') : '' }),
          filtered ? h('button', { type: 'button', class: 'btn btn-ghost btn-sm', text: tr('list.clearFilters'), onclick: clearFilters }) : null));
      }
    }
    // keep the cursor on a visible ticket
    if (S.cursor && !nums.has(S.cursor)) {
      const idx = S.cursorIndex ?? 0;
      S.cursor = list.length ? list[Math.min(idx, list.length - 1)].number : null;
    }
    S.cursorIndex = S.cursor ? list.findIndex((t) => t.number === S.cursor) : -1;
    for (const [n, el] of rowEls) {
      el.classList.toggle('cursor', n === S.cursor);
      el.classList.toggle('active', n === S.openNumber);
      el.setAttribute('aria-selected', String(n === S.openNumber));
    }
    S.visible = list;
    renderListEnd();
    // a short first page leaves no scrollbar to trigger the next one
    requestAnimationFrame(maybeLoadMore);
  }
  function renderListEnd() {
    const end = $('#list-end');
    if (!end) return;
    end.dataset.state = S.list.loading ? 'loading' : S.list.next ? 'more' : 'done';
    end.textContent = S.list.loading ? tr('common.loading') : S.list.next ? '' : tr('list.end', { n: (S.visible || []).length });
  }

  function renderAll() {
    renderViewNav();
    renderCounts();
    renderList();
    if (S.detail) renderHeader();
  }
  const renderSoon = (() => {
    let queued = false;
    return () => {
      if (queued) return;
      queued = true;
      requestAnimationFrame(() => { queued = false; renderAll(); });
    };
  })();

  function tickSla() {
    for (const [n, li] of rowEls) {
      const t = S.known.get(n);
      if (!t) continue;
      const el = li.querySelector('.sla');
      if (!el) continue;
      const s = slaInfo(t);
      if (el.textContent !== s.text) el.textContent = s.text;
      if (el.dataset.sla !== s.data) {
        el.dataset.sla = s.data;
      }
      const cls = `sla sla-${s.cls}`;
      if (el.className !== cls) el.className = cls;
    }
    const head = $('#conv-head .sla');
    if (head && S.detail) {
      const s = slaInfo(S.detail.ticket);
      head.dataset.sla = s.data;
      head.className = `sla sla-big sla-${s.cls}`;
      const txt = head.querySelector('.sla-text');
      if (txt && txt.textContent !== s.text) txt.textContent = s.text;
    }
  }

  // ───────────────────────────── views, filters, cursor ─────────────────────────────
  function reloadList() {
    $('#ticket-list').scrollTop = 0;
    clearSelection(false);
    loadList(true).catch((e) => actionError(e));
  }
  function setView(view) {
    if (!VIEWS.includes(view)) return;
    if (document.activeElement && document.activeElement.classList.contains('view')) document.activeElement.blur();
    S.view = view;
    renderViewNav();
    reloadList();
  }
  function setFilter(kind, value, only = false) {
    const set = S.filters[kind];
    if (only) { set.clear(); set.add(value); } else if (set.has(value)) set.delete(value); else set.add(value);
    renderViewNav();
    reloadList();
  }
  function setField(kind, value) {
    S.filters[kind] = value || '';
    renderViewNav();
    reloadList();
  }
  function clearFilters() {
    S.filters.priority.clear();
    S.filters.channel.clear();
    for (const k of ['status', 'topic', 'assignee', 'since', 'until', 'incident']) S.filters[k] = '';
    S.q = '';
    $('#search').value = '';
    renderViewNav();
    reloadList();
  }
  const runSearch = debounce(() => { reloadList(); }, 250);

  function moveCursor(delta) {
    const list = S.visible || [];
    if (!list.length) return;
    let idx = list.findIndex((t) => t.number === S.cursor);
    if (idx < 0) idx = list.findIndex((t) => t.number === S.openNumber);
    idx = idx < 0 ? (delta > 0 ? 0 : list.length - 1) : Math.max(0, Math.min(list.length - 1, idx + delta));
    S.cursor = list[idx].number;
    S.cursorIndex = idx;
    for (const [n, el] of rowEls) el.classList.toggle('cursor', n === S.cursor);
    const el = rowEls.get(S.cursor);
    if (el) el.scrollIntoView({ block: 'nearest' });
    prefetch(S.cursor);
  }
  const prefetch = debounce((n) => {
    if (!n || S.detailCache.has(n) || n === S.openNumber) return;
    api(tpath(n)).then((d) => { if (d && d.ticket) cacheDetail(d); }).catch(() => {});
  }, 180);
  function cacheDetail(d) {
    S.detailCache.delete(d.ticket.number);
    S.detailCache.set(d.ticket.number, d);
    while (S.detailCache.size > 40) S.detailCache.delete(S.detailCache.keys().next().value);
  }

  // ───────────────────────────── conversation ─────────────────────────────
  let openSeq = 0;
  async function openTicket(number, { focusComposer = null } = {}) {
    if (!number) return;
    const switching = S.openNumber !== number;
    if (switching) saveDraft();
    S.openNumber = number;
    S.cursor = number;
    S.unread.delete(number);
    renderList();
    if (location.hash !== `#${number}`) history.replaceState(null, '', `#${number}`);
    const cached = S.detailCache.get(number);
    if (switching) {
      if (cached) showDetail(cached, true);
      else showLoading(number);
    }
    const loading = reloadDetail(number, switching && !cached);
    S.loading = loading;
    await loading;
    if (S.loading === loading) S.loading = null;
    if (focusComposer) focusReply(focusComposer);
  }
  /** Fetch the open ticket again and patch the view (cursor, hash and unread marks stay as they are). */
  // VIP care (handoff/vip.py): a supervisor assigns the contact's account manager and tier.
  async function setManager(c, number) {
    const email = window.prompt(tr('vip.promptManager'), '');
    if (email === null) return;
    const tier = window.prompt(tr('vip.promptTier'), String(c.vip || 0));
    if (tier === null) return;
    try {
      const out = await api(`/agent/api/contacts/${c.id}/manager`, { method: 'POST', body: { manager_email: email.trim() || null, vip: parseInt(tier, 10) || 0 } });
      toast(tr('vip.updatedBody', { tier: out.vip, manager: out.manager ? out.manager.name : tr('vip.noManager') }), { kind: 'info', title: tr('vip.updated') });
      reloadDetail(number, true);
    } catch (e) { toast(e.message || String(e), { kind: 'warning' }); }
  }

  async function reloadDetail(number, fresh = false) {
    const seq = ++openSeq;
    try {
      const d = await api(tpath(number));
      if (seq !== openSeq || S.openNumber !== number) return;
      upsert(d.ticket, true);
      d.ticket = S.known.get(d.ticket.number) || d.ticket;
      cacheDetail(d);
      showDetail(d, fresh);
      renderAll();
    } catch (e) {
      if (seq !== openSeq) return;
      if (e.status === 404) {
        toast(tr('ticket.notFound', { number }), { kind: 'error' });
        closeConversation();
      } else actionError(e);
    }
  }
  const refreshTicket = (number) => {
    if (number && number === S.openNumber) return reloadDetail(number);
    if (number) {
      S.detailCache.delete(number);
      return api(tpath(number)).then((d) => { upsert(d.ticket, true); renderSoon(); }).catch(() => {});
    }
    return null;
  };
  function closeConversation() {
    saveDraft();
    S.openNumber = null;
    S.detail = null;
    $('#conv-live').hidden = true;
    $('#conv-empty').hidden = false;
    placeToasts();
    history.replaceState(null, '', location.pathname + location.search);
    renderList();
  }
  function showLoading(number) {
    S.detail = null; // no action may hit the previous ticket while this one loads
    $('#conv-empty').hidden = true;
    $('#conv-live').hidden = false;
    $('#conv-head').replaceChildren(h('div', { class: 'conv-title' }, h('span', { class: 'conv-num-loading', text: number }), h('span', { class: 'muted', text: tr('common.loading') })));
    $('#conv-actions').replaceChildren();
    $('#messages').replaceChildren(h('div', { class: 'msgs-loading' }, h('div', { class: 'sk sk1' }), h('div', { class: 'sk sk2' }), h('div', { class: 'sk sk3' })));
    $('#details').replaceChildren();
  }

  /** Render a detail payload; `fresh` re-renders the thread, otherwise only new messages are appended. */
  function showDetail(d, fresh) {
    const prevNumber = S.detail && S.detail.ticket.number;
    S.detail = d;
    $('#conv-empty').hidden = true;
    $('#conv-live').hidden = false;
    $('#conv-live').classList.toggle('no-details', !S.showDetails);
    renderHeader();
    renderMessages(fresh || prevNumber !== d.ticket.number);
    renderDetails();
    if (prevNumber !== d.ticket.number) loadDraft();
    updateComposer();
  }

  function renderHeader() {
    const d = S.detail;
    if (!d) return;
    const t = d.ticket;
    const sla = slaInfo(t);
    const c = t.contact || {};
    const vip = c.vip > 0;
    $('#conv-head').replaceChildren(
      h('div', { class: 'conv-title' },
        h('span', { class: 'conv-num', text: t.number }),
        h('span', { class: `pill pri pri-${t.priority}`, text: priorityLabel(t.priority) }),
        h('span', { class: `pill status status-${t.status}`, 'data-status': t.status, text: statusLabel(t.status) }),
        h('span', { class: 'conv-topic', text: topicLabel(t.topic) }),
        t.intent ? h('span', { class: 'conv-intent', title: tr('ticket.intentTitle'), translate: 'no', text: humanize(t.intent) }) : null,
        h('span', { class: 'spacer' }),
        h('span', { class: `sla sla-big sla-${sla.cls}`, 'data-sla': sla.data, title: sla.title },
          icon('clock'), h('span', { class: 'sla-text', text: sla.text })),
        h('button', { type: 'button', class: 'icon-btn details-toggle' + ((narrow() ? $('#conv-live').classList.contains('show-details-narrow') : S.showDetails) ? ' on' : ''), title: tr('ticket.toggleDetailsHint'), 'aria-label': tr('ticket.toggleDetails'), onclick: toggleDetails }, icon('sidebar'))),
      h('div', { class: 'conv-sub' },
        avatar(contactLabel(c), 'avatar-sm'),
        h('span', { class: 'conv-contact', text: contactLabel(c) }),
        vip ? h('span', { class: 'vip', title: tr('vip.level', { level: c.vip }) }, icon('star'), tr('vip.short', { level: c.vip })) : null,
        ...(c.identities || []).map((i) => h('span', { class: 'ident', title: `${channelInfo(i.channel).label}: ${i.source_id}` },
          channelBadge(i.channel), h('span', { text: i.label || i.source_id }))),
        h('span', { class: 'lang', title: tr('ticket.writesIn', { lang: langName(t.lang) }), text: langLabel(t.lang) || '?' }),
        h('span', { class: 'spacer' }),
        h('span', { class: 'conv-assignee' },
          t.assignee ? [avatar(t.assignee.name, 'avatar-xs' + (mine(t) ? ' avatar-me' : '')), h('span', { text: mine(t) ? tr('agent.you', { name: t.assignee.name }) : t.assignee.name })]
            : h('span', { class: 'muted', text: tr('assignee.none') }))),
    );
    renderActions();
  }

  function canAct(t) {
    return !t.assignee || mine(t) || (S.me && S.me.role === 'supervisor');
  }
  function renderActions() {
    const d = S.detail;
    if (!d) return;
    const t = d.ticket;
    const open = isOpenStatus(t);
    const allowed = canAct(t);
    const lockTitle = allowed ? '' : tr('action.locked', { name: t.assignee && t.assignee.name });
    const busy = (a) => S.busy.has(`${t.number}:${a}`);
    const btn = (testid, label, ico, kbd, onClick, { primary = false, disabled = false, title = '', danger = false } = {}) => h('button', {
      type: 'button', class: `btn btn-sm ${primary ? 'btn-primary' : 'btn-ghost'}${danger ? ' btn-danger' : ''}${busy(testid) ? ' busy' : ''}`,
      testid, disabled: disabled || busy(testid), title: title || (kbd ? tr('action.withKey', { label, key: kbd }) : label), onclick: onClick,
    }, icon(ico), h('span', { text: label }), kbd ? h('kbd', { text: kbd }) : null);
    const items = [];
    if (open && !t.assignee) items.push(btn('claim', tr('action.claim'), 'userPlus', 'c', () => doClaim(), { primary: true }));
    if (open && mine(t)) items.push(h('span', { class: 'yours' }, icon('check'), tr('action.yours')));
    if (open) {
      items.push(btn('transfer', tr('action.transfer'), 'transfer', 't', () => openTransfer(), { disabled: !allowed, title: lockTitle }));
      if (t.status === 'pending_user') items.push(btn('pending', tr('action.reopen'), 'reopen', 'p', () => doStatus('open'), { disabled: !allowed, title: lockTitle || tr('action.reopenHint') }));
      else items.push(btn('pending', tr('action.pending'), 'clock', 'p', () => doStatus('pending_user'), { disabled: !allowed, title: lockTitle || tr('action.pendingHint') }));
      items.push(btn('resolve', tr('action.resolve'), 'checkCircle', 'e', () => doResolve(), { primary: !!t.assignee && allowed, disabled: !allowed, title: lockTitle || tr('action.resolveHint') }));
      items.push(btn('handback', tr('action.handback'), 'bot', null, () => doHandback(), { disabled: !allowed, title: lockTitle || tr('action.handbackHint') }));
    } else if (t.status === 'resolved') {
      items.push(btn('reopen', tr('action.reopen'), 'reopen', null, () => doStatus('open')));
    }
    items.push(h('span', { class: 'spacer' }));
    items.push(btn('bot-wrong', tr('action.botWrong'), 'flag', 'b', () => openBotWrong(), { title: tr('action.botWrongHint') }));
    $('#conv-actions').replaceChildren(...items);
    placeToasts();
  }
  /** Toasts sit top-right just under the ticket toolbar: never over the composer or the actions. */
  function placeToasts() {
    const bar = $('#conv-actions');
    const r = bar && !$('#conv-live').hidden ? bar.getBoundingClientRect() : null;
    document.documentElement.style.setProperty('--toast-top', `${r && r.bottom > 0 ? Math.round(r.bottom + 10) : 16}px`);
  }

  /** A message's text; one the product wrote itself (a delivery note, "deleted by the user") in the agent's language. */
  const msgText = (m) => (m.text_code ? tOr(`message.code.${m.text_code}`, m.text) : m.text);
  function messageEl(m) {
    const base = { testid: 'message', 'data-direction': m.direction, 'data-author-type': m.author_type, 'data-id': m.id, 'data-ticket': m.ticket || '' };
    const isCurrent = S.detail && m.ticket === S.detail.ticket.number;
    const atts = (m.attachments || []).length
      ? h('div', { class: 'atts' }, m.attachments.map((a, i) => h(a.ref && m.ticket ? 'a' : 'span', {
        class: 'att', title: a.content_type || '', testid: 'attachment',
        ...(a.ref && m.ticket
          ? { href: `/agent/api/tickets/${encodeURIComponent(m.ticket)}/messages/${m.id}/attachments/${i}`, target: '_blank', rel: 'noopener' }
          : {}) },
        icon(/^image\//.test(a.content_type || '') ? 'file' : 'clip'), h('span', { class: 'att-name', text: a.name || tr('message.attachment') }),
        a.size != null ? h('span', { class: 'att-size', text: fmtSize(a.size) }) : null)))
      : null;
    if (m.author_type === 'system') {
      return h('div', { ...base, class: 'msg msg-system' + (isCurrent ? '' : ' other') },
        h('span', { class: 'msg-text', text: msgText(m) }), ' · ', timeEl(m.at));
    }
    if (m.direction === 'note') {
      return h('div', { ...base, class: 'msg msg-note' + (isCurrent ? '' : ' other') },
        h('div', { class: 'msg-meta' }, icon('note'), h('b', { text: tr('composer.note') }), h('span', { text: m.author ? `· ${m.author}` : '' }), h('span', { class: 'spacer' }), timeEl(m.at)),
        h('div', { class: 'msg-text' }, richText(msgText(m))), atts);
    }
    const inbound = m.direction === 'in';
    const who = inbound ? contactLabel(S.detail && S.detail.ticket.contact) : m.author_type === 'bot' ? tr('message.assistant') : (m.author || tr('message.agent'));
    const av = inbound ? avatar(who, 'avatar-sm') : m.author_type === 'bot' ? h('span', { class: 'avatar avatar-sm avatar-bot' }, icon('bot')) : avatar(who, 'avatar-sm avatar-agent');
    return h('div', { ...base, class: `msg ${inbound ? 'msg-in' : 'msg-out'} msg-${m.author_type}` + (isCurrent ? '' : ' other') },
      av,
      h('div', { class: 'msg-col' },
        h('div', { class: 'msg-meta' },
          h('b', { text: who }),
          m.author_type === 'bot' ? h('span', { class: 'tag', text: tr('message.botTag') }) : null,
          channelBadge(m.channel, true),
          m.sender_check ? h('span', { class: 'tag ' + (m.sender_check.verified ? 'sender-ok' : 'sender-unverified'), testid: 'sender-check',
            text: tr(m.sender_check.verified ? 'sender.verified' : 'sender.unverified', { why: (m.sender_check.why || '').slice(0, 80) }),
            title: m.sender_check.relay ? tr('sender.via', { why: m.sender_check.why || '', relay: m.sender_check.relay }) : (m.sender_check.why || '') }) : null,
          timeEl(m.at)),
        h('div', { class: 'bubble' }, h('div', { class: 'msg-text' }, richText(msgText(m))), atts)));
  }
  function dividerEl(number, isCurrent) {
    const other = (S.detail.other_tickets || []).find((o) => o.number === number);
    const t = isCurrent ? S.detail.ticket : other;
    return h('div', { class: 'divider' + (isCurrent ? ' current' : ''), 'data-divider': number },
      h('span', { class: 'divider-line' }),
      isCurrent
        ? h('span', { class: 'divider-label' }, h('b', { text: number }), ` · ${tr('thread.thisTicket')}`)
        : h('button', { type: 'button', class: 'divider-label link', title: tr('thread.open', { number }), onclick: () => openTicket(number) },
          h('b', { text: number || tr('thread.earlier') }),
          t ? ` · ${topicLabel(t.topic)} · ${statusLabel(t.status)}` : ''),
      h('span', { class: 'divider-line' }));
  }
  function dayKey(iso) {
    const d = new Date(ms(iso));
    return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
  }
  function dayLabel(iso) {
    const d = new Date(ms(iso));
    const today = new Date(now());
    const y = new Date(today);
    y.setDate(today.getDate() - 1);
    const r = I18N.fmt.rel;
    const cap = (x) => x.charAt(0).toLocaleUpperCase(I18N.intl) + x.slice(1);
    if (dayKey(d.toISOString()) === dayKey(today.toISOString())) return cap(r.format(0, 'day'));
    if (dayKey(d.toISOString()) === dayKey(y.toISOString())) return cap(r.format(-1, 'day'));
    return I18N.fmt.day.format(d);
  }

  let lastTicketInThread = null;
  let lastDayInThread = null;
  function appendToThread(box, m) {
    if (m.ticket !== lastTicketInThread) {
      box.appendChild(dividerEl(m.ticket, m.ticket === S.detail.ticket.number));
      lastTicketInThread = m.ticket;
      lastDayInThread = null;
    }
    const dk = m.at ? dayKey(m.at) : null;
    if (dk && dk !== lastDayInThread) {
      box.appendChild(h('div', { class: 'day', text: dayLabel(m.at), title: absTime(m.at) }));
      lastDayInThread = dk;
    }
    box.appendChild(messageEl(m));
  }
  function renderMessages(fresh) {
    const box = $('#messages');
    const msgs = S.detail.messages || [];
    const rendered = $$('.msg[data-id]', box).map((el) => el.dataset.id);
    const ids = msgs.map((m) => String(m.id));
    const prefixOk = !fresh && rendered.length <= ids.length && rendered.every((id, i) => id === ids[i]);
    const atBottom = isNearBottom(box);
    if (!prefixOk) {
      box.replaceChildren();
      lastTicketInThread = null;
      lastDayInThread = null;
      if (!msgs.length) box.appendChild(h('div', { class: 'thread-empty', text: tr('thread.empty') }));
      for (const m of msgs) appendToThread(box, m);
      scrollToBottom(true);
      return;
    }
    const extra = msgs.slice(rendered.length);
    $('.thread-empty', box)?.remove();
    for (const m of extra) appendToThread(box, m);
    if (extra.length) {
      if (atBottom || extra.every((m) => m.author_type === 'agent')) scrollToBottom();
      else $('#new-msgs').hidden = false;
    }
  }
  function isNearBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }
  function scrollToBottom(instant) {
    const box = $('#messages');
    box.scrollTo({ top: box.scrollHeight, behavior: instant ? 'auto' : 'smooth' });
    $('#new-msgs').hidden = true;
  }
  /** A message arrived (push or our own POST): add it to the open thread if it belongs there. */
  function addMessage(m) {
    if (!m || !m.ticket) return;
    const t = S.known.get(m.ticket);
    if (t && m.direction !== 'note') {
      const lm = t.last_message;
      if (!lm || !(ms(lm.at) > ms(m.at))) {
        upsert({ ...t, last_message: { text: m.text, at: m.at, author_type: m.author_type } }, true);
      }
    }
    if (m.direction === 'in' && m.ticket !== S.openNumber) S.unread.add(m.ticket);
    for (const [n, d] of S.detailCache) {
      if (n === S.openNumber) continue;
      if (n === m.ticket || (d.other_tickets || []).some((o) => o.number === m.ticket)) S.detailCache.delete(n);
    }
    const d = S.detail;
    if (d && (m.ticket === d.ticket.number || (d.other_tickets || []).some((o) => o.number === m.ticket))) {
      if (!d.messages.some((x) => x.id === m.id)) {
        d.messages.push(m);
        d.messages.sort((a, b) => (ms(a.at) - ms(b.at)) || (a.id - b.id));
        renderMessages(false);
      }
    }
    renderSoon();
  }

  function section(title, ...body) {
    return h('section', { class: 'dsec' }, h('h4', { text: title }), ...body);
  }
  function kv(label, value, title) {
    return h('div', { class: 'kv' }, h('span', { class: 'k', text: label }), h('span', { class: 'v', title: title || null }, value ?? '—'));
  }
  function renderDetails() {
    const d = S.detail;
    const t = d.ticket;
    const c = t.contact || {};
    const sla = slaInfo(t);
    const others = d.other_tickets || [];
    const audit = d.audit || [];
    $('#details').replaceChildren(...[
      section(tr('details.contact'),
        h('div', { class: 'dcontact' }, avatar(contactLabel(c), 'avatar-md'),
          h('div', null, h('div', { class: 'dname', text: contactLabel(c) }),
            h('div', { class: 'muted small' }, c.vip > 0 ? h('span', { class: 'vip' }, icon('star'), tr('vip.short', { level: c.vip })) : tr('details.regular'), ` · ${tr('details.writes', { lang: langName(t.lang) || '?' })}`))),
        h('ul', { class: 'idents' }, (c.identities || []).map((i) => h('li', null, channelBadge(i.channel, true),
          h('span', { class: 'ident-label', text: i.label || i.source_id }),
          i.label && i.label !== i.source_id ? h('span', { class: 'muted mono small', text: i.source_id }) : null))),
        S.me && S.me.role === 'supervisor' && c.id ? h('button', { type: 'button', class: 'btn btn-sm', 'data-testid': 'set-manager',
          text: tr('details.setManager'), onclick: () => setManager(c, t.number) }) : null),
      section(tr('details.ticket'),
        kv(tr('details.status'), statusLabel(t.status)),
        kv(tr('details.priority'), priorityLabel(t.priority)),
        kv(tr('details.topic'), topicLabel(t.topic)),
        t.intent ? kv(tr('details.intent'), h('span', { translate: 'no', text: humanize(t.intent) })) : null,
        kv(tr('details.channel'), channelInfo(t.channel).label),
        kv(tr('details.created'), timeEl(t.created_at)),
        kv(tr('details.firstResponse'), t.first_responded_at ? timeEl(t.first_responded_at) : t.first_response_due ? h('span', null, `${tr('details.due')} `, timeEl(t.first_response_due)) : '—'),
        kv(tr('details.resolutionDue'), t.resolution_due ? timeEl(t.resolution_due) : '—'),
        kv(tr('details.sla'), h('span', { class: `sla sla-${sla.cls}`, text: sla.text || tr(`sla.state.${sla.data}`) })),
        t.csat != null ? kv(tr('details.csat'), tr('details.csatValue', { score: t.csat })) : null),
      others.length ? section(tr('details.others', { n: others.length }),
        h('ul', { class: 'others' }, others.map((o) => h('li', null, h('button', { type: 'button', class: 'other-t', onclick: () => openTicket(o.number) },
          h('span', { class: `dot pri-${o.priority}` }), h('span', { class: 'mono', text: o.number }), h('span', { class: 'muted', text: topicLabel(o.topic) }),
          h('span', { class: 'spacer' }), h('span', { class: `pill status status-${o.status}`, text: statusLabel(o.status) })))))) : null,
      section(tr('details.activity'),
        audit.length ? h('ol', { class: 'audit' }, audit.slice().reverse().map((a) => h('li', null,
          h('span', { class: 'audit-dot' }),
          h('div', null, h('div', null, h('b', { text: ['system', 'bot', 'user'].includes(a.actor || 'system') ? tr(`audit.actor.${a.actor || 'system'}`) : a.actor }), ' ',
            h('span', { text: tOr(`audit.${a.action}`, humanize(a.action)) })),
            a.detail ? h('div', { class: 'muted small', translate: 'no', text: a.detail }) : null,
            timeEl(a.at, 'ts small')))))
          : h('p', { class: 'muted small', text: tr('details.noActivity') })),
    ].filter(Boolean));  // a missing section must not render as the text "null"
  }
  const narrow = () => window.matchMedia('(max-width: 1320px)').matches;
  function toggleDetails() {
    const live = $('#conv-live');
    if (narrow()) {
      live.classList.toggle('show-details-narrow');
    } else {
      S.showDetails = !S.showDetails;
      try { localStorage.setItem('sb_details', S.showDetails ? '1' : '0'); } catch { /* ignore */ }
      live.classList.toggle('no-details', !S.showDetails);
    }
    renderHeader();
  }

  // ───────────────────────────── composer ─────────────────────────────
  const ta = () => $('#reply-input');
  function draftKey(mode = S.mode) { return `${S.openNumber}:${mode}`; }
  function saveDraft() {
    if (!S.openNumber || !S.detail) return;
    const v = ta().value;
    if (v) S.drafts.set(draftKey(), v); else S.drafts.delete(draftKey());
  }
  function loadDraft() {
    ta().value = S.drafts.get(draftKey()) || '';
    autosize();
  }
  function setMode(mode) {
    if (mode !== 'reply' && mode !== 'note') return;
    if (mode !== S.mode) {
      saveDraft();
      S.mode = mode;
      loadDraft();
    }
    updateComposer();
  }
  function updateComposer() {
    const comp = $('#composer');
    comp.dataset.mode = S.mode;
    for (const b of $$('.ctab', comp)) {
      const on = b.dataset.mode === S.mode;
      b.classList.toggle('on', on);
      b.setAttribute('aria-selected', String(on));
    }
    const t = S.detail && S.detail.ticket;
    const hint = $('#composer-hint');
    const meta = $('#composer-meta');
    const input = ta();
    const send = $('#reply-send');
    let disabled = false;
    if (!t) return;
    const lang = langName(t.lang) || tr('composer.usersLanguage');
    const ident = (t.contact && (t.contact.identities || []).find((i) => i.channel === t.channel)) || null;
    if (S.mode === 'note') {
      hint.replaceChildren(icon('lock'), tr('composer.noteHint'));
      input.placeholder = tr('composer.notePlaceholder');
      $('.send-label', send).textContent = tr('composer.addNote');
    } else {
      hint.replaceChildren(channelBadge(t.channel), ...(ident
        ? trParts('composer.replyViaTo', { channel: channelInfo(t.channel).label, to: h('span', { translate: 'no', text: ident.label || ident.source_id }) })
        : [tr('composer.replyVia', { channel: channelInfo(t.channel).label })]));
      input.placeholder = tr('composer.replyPlaceholder', { lang });
      $('.send-label', send).textContent = tr('composer.send');
      if (t.status === 'closed') disabled = true;
    }
    let note = '';
    if (!canAct(t) && S.mode === 'reply') { disabled = true; note = tr('composer.assignedTo', { name: t.assignee.name }); } else if (S.mode === 'reply' && t.status === 'closed') note = tr('composer.closed');
    else if (S.mode === 'reply' && !t.assignee && isOpenStatus(t)) note = tr('composer.assigns');
    else if (S.mode === 'reply' && t.status === 'resolved') note = tr('composer.reopens');
    meta.textContent = note;
    input.disabled = disabled;
    send.disabled = disabled || S.sending;
    send.classList.toggle('busy', !!S.sending);
  }
  function autosize() {
    const el = ta();
    el.style.height = 'auto';
    el.style.height = `${Math.min(Math.max(el.scrollHeight, 64), 280)}px`;
  }
  function focusReply(mode) {
    if (!S.detail) return;
    setMode(mode);
    const el = ta();
    el.focus();
    el.setSelectionRange(el.value.length, el.value.length);
  }
  async function send() {
    const t = S.detail && S.detail.ticket;
    if (!t || S.sending) return;
    const el = ta();
    const text = el.value.trim();
    if (!text) { el.focus(); return; }
    const mode = S.mode;
    const number = t.number;
    S.sending = true;
    updateComposer();
    try {
      const m = await api(tpath(number, mode === 'note' ? '/note' : '/reply'), { method: 'POST', body: { text } });
      if (S.openNumber === number && S.mode === mode) { el.value = ''; autosize(); }
      S.drafts.delete(`${number}:${mode}`);
      if (m && m.id !== undefined) addMessage({ ticket: number, ...m });
      scrollToBottom();
      refreshTicket(number); // assignee/status/first response may have changed; fetch audit too
    } catch (e) {
      actionError(e, number);
    } finally {
      S.sending = false;
      updateComposer();
    }
  }

  // canned answers: "/" at a word start in the composer, or Ctrl+K / the button
  const canned = { open: false, from: -1, items: [], idx: 0, viaSearch: false };
  async function ensureCanned() {
    if (S.canned) return S.canned;
    try {
      const d = await api('/agent/api/canned');
      S.canned = (d && d.canned) || [];
    } catch (e) { actionError(e); S.canned = []; }
    return S.canned;
  }
  function cannedText(c) {
    const t = S.detail && S.detail.ticket;
    return String(c.text || '').replace(/\{ticket\}/g, t ? t.number : '');
  }
  async function openCanned(viaSearch) {
    if (!S.detail) return;
    if (ta().disabled) return;
    await ensureCanned();
    canned.open = true;
    canned.viaSearch = viaSearch;
    canned.idx = 0;
    const pop = $('#canned-pop');
    pop.hidden = false;
    pop.classList.toggle('via-search', viaSearch);
    const f = $('#canned-filter');
    f.value = '';
    if (viaSearch) { canned.from = -1; f.focus(); }
    renderCanned();
  }
  function closeCanned(refocus = true) {
    if (!canned.open) return;
    canned.open = false;
    $('#canned-pop').hidden = true;
    if (refocus) ta().focus();
  }
  /** A canned answer's title in the agent's language (its text stays in the user's language). */
  function cannedTitle(c) {
    const titles = c.titles || {};
    return titles[I18N.code] || titles[I18N.code.split('-')[0]] || c.title || titles.en || c.key;
  }
  function cannedQuery() {
    if (canned.viaSearch) return $('#canned-filter').value.trim().toLowerCase();
    const el = ta();
    return el.value.slice(canned.from + 1, el.selectionStart).toLowerCase();
  }
  function renderCanned() {
    const lang = S.detail && S.detail.ticket.lang;
    const q = cannedQuery();
    const all = (S.canned || []).slice().sort((a, b) => (a.lang === lang ? 0 : 1) - (b.lang === lang ? 0 : 1));
    canned.items = all.filter((c) => !q || [c.key, c.title, cannedTitle(c), c.text].some((x) => x && String(x).toLowerCase().includes(q)));
    canned.idx = Math.min(canned.idx, Math.max(0, canned.items.length - 1));
    const ul = $('#canned-list');
    ul.replaceChildren(...(canned.items.length ? canned.items.map((c, i) => h('li', {
      class: 'canned-item' + (i === canned.idx ? ' on' : ''), role: 'option', 'aria-selected': String(i === canned.idx),
      onmousedown: (e) => { e.preventDefault(); canned.idx = i; insertCanned(); },
      onmousemove: () => { if (canned.idx !== i) { canned.idx = i; highlightCanned(); } },
    },
    h('div', { class: 'canned-top' }, h('span', { class: 'canned-title', text: cannedTitle(c) }),
      h('span', { class: 'lang' + (c.lang === lang ? ' lang-match' : ''), text: langLabel(c.lang) }),
      h('span', { class: 'canned-key mono', text: `/${c.key}` })),
    h('div', { class: 'canned-text', text: cannedText(c) })))
      : [h('li', { class: 'canned-empty', text: tr((S.canned || []).length ? 'canned.noMatch' : 'canned.none') })]));
    highlightCanned();
  }
  function highlightCanned() {
    $$('#canned-list .canned-item').forEach((li, i) => {
      li.classList.toggle('on', i === canned.idx);
      if (i === canned.idx) li.scrollIntoView({ block: 'nearest' });
    });
  }
  function insertCanned() {
    const c = canned.items[canned.idx];
    if (!c) return;
    const el = ta();
    const text = cannedText(c);
    let start = el.selectionStart;
    let end = el.selectionEnd;
    if (!canned.viaSearch && canned.from >= 0) { start = canned.from; end = el.selectionStart; }
    el.value = el.value.slice(0, start) + text + el.value.slice(end);
    const pos = start + text.length;
    closeCanned(true);
    el.setSelectionRange(pos, pos);
    autosize();
    saveDraft();
  }
  function cannedKey(e) {
    if (!canned.open) return false;
    if (e.key === 'ArrowDown' || (e.key === 'n' && e.ctrlKey)) { canned.idx = Math.min(canned.items.length - 1, canned.idx + 1); highlightCanned(); }
    else if (e.key === 'ArrowUp' || (e.key === 'p' && e.ctrlKey)) { canned.idx = Math.max(0, canned.idx - 1); highlightCanned(); }
    else if ((e.key === 'Enter' && !e.ctrlKey && !e.metaKey) || e.key === 'Tab') { if (!canned.items.length) { closeCanned(); return true; } insertCanned(); }
    else if (e.key === 'Escape') closeCanned(true);
    else return false;
    e.preventDefault();
    e.stopPropagation();
    return true;
  }

  // ───────────────────────────── actions ─────────────────────────────
  async function act(action, path, body, okMsg) {
    const t = S.detail && S.detail.ticket;
    if (!t) return null;
    const number = t.number;
    const key = `${number}:${action}`;
    if (S.busy.has(key)) return null;
    S.busy.add(key);
    renderActions();
    try {
      const res = await api(tpath(number, path), { method: 'POST', body });
      if (res && res.number) upsert(res, true);
      if (okMsg) toast(typeof okMsg === 'function' ? okMsg(res) : okMsg, { kind: 'success' });
      renderAll();
      refreshTicket(number);
      return res || {};
    } catch (e) {
      actionError(e, number);
      return null;
    } finally {
      S.busy.delete(key);
      if (S.detail && S.detail.ticket.number === number) { renderActions(); updateComposer(); }
    }
  }
  function doClaim() {
    const t = S.detail && S.detail.ticket;
    if (!t) return;
    if (mine(t)) { toast(tr('claim.already', { number: t.number })); return; }
    if (t.assignee) { toast(tr('claim.taken', { name: t.assignee.name }), { kind: 'warning' }); return; }
    if (!isOpenStatus(t)) { toast(tr('claim.notOpen', { status: statusLabel(t.status) }), { kind: 'warning' }); return; }
    act('claim', '/claim', undefined, null).then((r) => { if (r) updateComposer(); });
  }
  function doStatus(status) {
    const t = S.detail && S.detail.ticket;
    if (!t) return;
    act('pending', '/status', { status }, tr(status === 'pending_user' ? 'status.toastPending' : 'status.toastReopened', { number: t.number }));
  }
  function doResolve() {
    const t = S.detail && S.detail.ticket;
    if (!t) return;
    if (!isOpenStatus(t)) { toast(tr('resolve.already', { number: t.number, status: statusLabel(t.status) })); return; }
    const number = t.number;
    act('resolve', '/resolve', undefined, null).then((r) => {
      if (!r) return;
      toast(tr('resolve.toast'), {
        kind: 'success', title: tr('resolve.toastTitle', { number }),
        action: { label: tr('action.reopen'), run: () => { if (S.openNumber === number) doStatus('open'); else api(tpath(number, '/status'), { method: 'POST', body: { status: 'open' } }).then((x) => { upsert(x, true); renderAll(); }).catch((e) => actionError(e, number)); } },
      });
      if (S.view !== 'resolved' && S.view !== 'all') advanceAfterDone(number);
    });
  }
  function doHandback() {
    const t = S.detail && S.detail.ticket;
    if (!t) return;
    const number = t.number;
    act('handback', '/handback', undefined, null).then((r) => {
      if (!r) return;
      toast(tr('handback.toast'), { kind: 'success', title: tr('handback.toastTitle', { number }) });
    });
  }
  /** After resolving, keep the ticket open but put the cursor on the next one in the list. */
  function advanceAfterDone(number) {
    const list = S.visible || [];
    if (!list.length) return;
    const idx = list.findIndex((x) => x.number === number);
    if (idx === -1 && S.cursorIndex >= 0) {
      S.cursor = list[Math.min(S.cursorIndex, list.length - 1)].number;
      renderList();
    }
  }

  // transfer dialog
  const transfer = { items: [], idx: 0 };
  async function openTransfer() {
    const t = S.detail && S.detail.ticket;
    if (!t) return;
    if (!isOpenStatus(t)) { toast(tr('transfer.onlyOpen')); return; }
    if (!canAct(t)) { toast(tr('action.locked', { name: t.assignee.name }), { kind: 'error', title: tr('error.title.forbidden') }); return; }
    const dlg = $('#transfer-dlg');
    $('#transfer-title').textContent = tr('transfer.titleNumber', { number: t.number });
    $('#transfer-filter').value = '';
    $('#transfer-list').replaceChildren(h('li', { class: 'muted pick-empty', text: tr('transfer.loading') }));
    dlg.showModal();
    $('#transfer-filter').focus();
    try {
      const d = await api('/agent/api/agents');
      S.agents = (d && d.agents) || [];
    } catch (e) { actionError(e); }
    transfer.idx = 0;
    renderTransfer();
  }
  function renderTransfer() {
    const t = S.detail && S.detail.ticket;
    const q = $('#transfer-filter').value.trim().toLowerCase();
    const agents = (S.agents || []).slice().sort((a, b) => (b.online - a.online) || String(a.name).localeCompare(String(b.name)));
    transfer.items = agents.filter((a) => !q || String(a.name).toLowerCase().includes(q));
    transfer.idx = Math.min(transfer.idx, Math.max(0, transfer.items.length - 1));
    const cur = t && t.assignee ? t.assignee.id : null;
    $('#transfer-list').replaceChildren(...(transfer.items.length ? transfer.items.map((a, i) => h('li', {
      class: 'pick' + (i === transfer.idx ? ' on' : '') + (a.id === cur ? ' current' : ''), role: 'option', 'data-agent-id': a.id,
      onclick: () => { transfer.idx = i; doTransfer(); },
      onmousemove: () => { if (transfer.idx !== i) { transfer.idx = i; $$('#transfer-list .pick').forEach((li, j) => li.classList.toggle('on', j === i)); } },
    }, avatar(a.name, 'avatar-sm'),
    h('span', { class: 'pick-name', text: S.me && a.id === S.me.id ? tr('agent.you', { name: a.name }) : a.name }),
    a.role === 'supervisor' ? h('span', { class: 'tag', text: tr('role.supervisor') }) : null,
    h('span', { class: 'spacer' }),
    a.id === cur ? h('span', { class: 'muted small', text: tr('transfer.current') }) : null,
    h('span', { class: 'presence ' + (a.online ? 'on' : 'off'), text: tr(a.online ? 'presence.online' : 'presence.offline') })))
      : [h('li', { class: 'muted pick-empty', text: tr('transfer.noMatch') })]));
  }
  async function doTransfer() {
    const a = transfer.items[transfer.idx];
    const t = S.detail && S.detail.ticket;
    if (!a || !t) return;
    if (t.assignee && a.id === t.assignee.id) { toast(tr('transfer.already', { number: t.number, name: a.name })); return; }
    $('#transfer-dlg').close();
    await act('transfer', '/transfer', { agent_id: a.id }, tr('transfer.done', { number: t.number, name: a.name }));
  }

  // bot-was-wrong dialog
  async function openBotWrong() {
    const t = S.detail && S.detail.ticket;
    if (!t) return;
    const dlg = $('#botwrong-dlg');
    $('#botwrong-lead').replaceChildren(tr('botWrong.filedAs'), ' ', h('b', { text: topicLabel(t.topic) }),
      ...(t.intent ? [' / ', h('span', { class: 'mono', translate: 'no', text: t.intent })] : []), ' ', tr('botWrong.question'));
    dlg.showModal();
    if (!S.intents) {
      try { S.intents = await api('/agent/api/intents'); } catch (e) { actionError(e); S.intents = { topics: [], intents: {} }; }
    }
    const sel = $('#bw-topic');
    const topics = (S.intents.topics || []).slice();
    sel.replaceChildren(h('option', { value: '', text: tr('botWrong.chooseTopic') }), ...topics.map((x) => h('option', { value: x, text: topicLabel(x) })));
    sel.value = '';
    fillIntents();
    sel.focus();
  }
  function fillIntents() {
    const topic = $('#bw-topic').value;
    const list = (S.intents && S.intents.intents && S.intents.intents[topic]) || [];
    const sel = $('#bw-intent');
    sel.replaceChildren(h('option', { value: '', text: topic ? tr('botWrong.noIntent') : '—' }), ...list.map((x) => h('option', { value: x, translate: 'no', text: x })));
    sel.disabled = !topic || !list.length;
    $('#bw-submit').disabled = !topic;
  }
  async function submitBotWrong(e) {
    e.preventDefault();
    const topic = $('#bw-topic').value;
    if (!topic) { $('#bw-topic').focus(); return; }
    const intent = $('#bw-intent').value || null;
    $('#botwrong-dlg').close();
    const r = await act('bot-wrong', '/feedback', { topic, intent, bot_wrong: true }, null);
    if (r) toast(tr('botWrong.marked', { what: topicLabel(topic) + (intent ? ` / ${intent}` : '') }), { kind: 'success', title: tr('botWrong.thanks') });
  }

  // help
  // [section key, [[keys, label key]]] — key names (Ctrl, Enter, Esc) are the keyboard's, not translated
  const SHORTCUTS = [
    ['navigate', [['j', 'next'], ['k', 'previous'], ['Enter', 'open'], ['1 – 4', 'views'], ['/', 'search'], ['x', 'select'], ['i', 'details']]],
    ['act', [['c', 'claim'], ['r', 'reply'], ['n', 'note'], ['e', 'resolve'], ['p', 'pending'], ['t', 'transfer'], ['b', 'botWrong']]],
    ['composer', [['Ctrl Enter', 'send'], ['/', 'canned'], ['Ctrl K', 'cannedSearch'], ['Esc', 'leave']]],
    ['anywhere', [['?', 'help'], ['Esc', 'close']]],
  ];
  function openHelp() {
    const grid = $('#help-grid');
    if (!grid.firstChild) {
      grid.replaceChildren(...SHORTCUTS.map(([title, rows]) => h('section', null, h('h4', { text: tr(`help.${title}`) }),
        h('dl', null, rows.map(([k, label]) => [h('dt', { translate: 'no' }, k.split(' ').map((x) => (x === '–' ? ' – ' : h('kbd', { text: x })))), h('dd', { text: tr(`help.${title}.${label}`) })])))));
    }
    $('#help-dlg').showModal();
  }

  // ───────────────────────────── live updates ─────────────────────────────
  let connNow = ['connecting', 'conn.connecting', null];
  function setConn(state, key, params) {
    connNow = [state, key, params];
    const el = $('#conn');
    el.dataset.state = state;
    $('.conn-text', el).textContent = tr(key, params);
  }
  function connectWS() {
    const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/agent/ws`;
    let ws;
    try { ws = new WebSocket(url); } catch { scheduleReconnect(); return; }
    S.ws = ws;
    let ping = null;
    ws.addEventListener('open', () => {
      const reconnect = S.wsEverOpen;
      S.wsEverOpen = true;
      S.wsAttempts = 0;
      setConn('live', 'conn.live');
      ping = setInterval(() => { if (ws.readyState === 1) ws.send(JSON.stringify({ type: 'ping' })); }, 25000);
      if (reconnect || Date.now() - S.lastFullLoad > 3000) refreshAll().catch((e) => actionError(e));
    });
    ws.addEventListener('message', (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      try { handleEvent(msg); } catch (e) { console.error('switchboard: bad event', e, msg); }
    });
    ws.addEventListener('close', (ev) => {
      clearInterval(ping);
      if (ev.code === 4401 || ev.code === 4403) { toLogin(); return; } // session gone
      if (S.ws !== ws) return;
      S.ws = null;
      scheduleReconnect();
    });
    ws.addEventListener('error', () => { /* a close follows */ });
  }
  function scheduleReconnect() {
    S.wsAttempts++;
    const base = Math.min(30000, 1000 * 2 ** Math.min(S.wsAttempts - 1, 5));
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    setConn('down', 'conn.reconnecting', { dur: dur(delay) });
    if (S.wsAttempts >= 2) api('/agent/api/me').catch(() => {}); // a 401 here sends us to the login page
    setTimeout(() => { setConn('connecting', 'conn.connecting'); connectWS(); }, delay);
  }

  function handleEvent(msg) {
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'ticket' || msg.type === 'sla' || msg.type === 'bulk') refreshCounts();
    if (msg.type === 'bulk') {
      // many tickets changed at once (someone's bulk action, an incident): fetch the view again
      // unless the agent is deep in a long list (the counters above stay true either way)
      if (S.list.numbers.length <= 200 && !S.sel.size && !S.selAll) reloadSoon();
      if (String(msg.action || '').startsWith('incident')) loadIncidents();
      return;
    }
    if (msg.type === 'incident') { loadIncidents(); return; }
    if (msg.type === 'ticket' && msg.ticket) {
      const t = msg.ticket;
      const before = S.known.get(t.number);
      const merged = upsert(t);
      if (!merged) return;
      const isNewUrgent = merged.priority === 'urgent' && !merged.assignee && (merged.status === 'new' || merged.status === 'open')
        && (!before || before.priority !== 'urgent' || !isOpenStatus(before));
      if (isNewUrgent) {
        flashRow(t.number);
        toast(trParts('event.urgentBody', { topic: topicLabel(merged.topic), contact: dataSpan(contactLabel(merged.contact)), channel: channelInfo(merged.channel).label }), {
          kind: 'urgent', title: tr('event.urgentTitle', { number: t.number }), timeout: 10000,
          action: { label: tr('event.open'), run: () => openTicket(t.number) },
        });
      }
      if (before && S.openNumber === t.number && before.assignee == null && merged.assignee && !mine(merged)) {
        toast(tr('event.claimedBy', { number: t.number, name: merged.assignee.name }), { kind: 'warning' });
      }
      if (S.openNumber === t.number) {
        renderHeader();
        updateComposer();
        debouncedDetailRefresh();
      }
      renderSoon();
    } else if (msg.type === 'vip_offer' && msg.ticket && S.me && msg.agent_id === S.me.id) {
      // A VIP of yours opened a ticket: it waits for you alone until the offer runs out (handoff/vip.py).
      const t = upsert(msg.ticket) || msg.ticket;
      flashRow(t.number);
      toast(tr('vip.offeredBody', { topic: topicLabel(t.topic), contact: contactLabel(t.contact) }), {
        kind: 'urgent', title: tr('vip.offered', { ticket: t.number }), timeout: 15000,
        action: { label: tr('vip.open'), run: () => openTicket(t.number) },
      });
      renderSoon();
    } else if (msg.type === 'callback_due' && msg.callback) {
      const c = msg.callback;
      toast(tr('callbacks.dueBody', { ticket: c.ticket, vip: c.vip > 0 ? ` · VIP ${c.vip}` : '', who: c.assignee ? c.assignee.name : tr('callbacks.unclaimed') }), {
        kind: 'warning', title: tr('callbacks.due'), timeout: 12000,
        action: { label: tr('callbacks.title'), run: () => location.assign('/agent/callbacks') },
      });
    } else if (msg.type === 'message' && msg.message) {
      addMessage(msg.message);
    } else if (msg.type === 'sla' && msg.ticket) {
      const t = upsert(msg.ticket, true);
      const breach = msg.event === 'breached';
      flashRow(msg.ticket.number, breach ? 'sla-alert' : 'sla-warn');
      toast([`${topicLabel(t.topic)} · `, dataSpan(contactLabel(t.contact)), ` · ${priorityLabel(t.priority)}`], {
        kind: breach ? 'breach' : 'warning',
        title: tr(breach ? 'event.slaBreached' : 'event.slaAtRisk', { number: t.number }),
        timeout: breach ? 12000 : 8000,
        action: S.openNumber === t.number ? null : { label: tr('event.open'), run: () => openTicket(t.number) },
      });
      if (S.openNumber === t.number) renderHeader();
      renderSoon();
    }
  }
  const reloadSoon = throttle(() => { loadList(true).catch(() => {}); if (S.openNumber) refreshTicket(S.openNumber); }, 1500);
  const debouncedDetailRefresh = debounce(() => { if (S.openNumber) reloadDetail(S.openNumber); }, 400);
  function flashRow(number, cls = 'flash') {
    if (cls === 'flash') S.flash.set(number, Date.now() + 2600);
    requestAnimationFrame(() => requestAnimationFrame(() => {
      const el = rowEls.get(number);
      if (!el) return;
      el.classList.remove(cls);
      void el.offsetWidth; // restart the animation
      el.classList.add(cls);
      setTimeout(() => el.classList.remove(cls), 2600);
    }));
    const q = $('.view[data-view="queue"] .view-count');
    if (q && cls === 'flash') { q.classList.remove('bump'); void q.offsetWidth; q.classList.add('bump'); }
  }

  // ───────────────────────────── bulk actions ─────────────────────────────
  const BULK = ['assign', 'priority', 'tag', 'resolve', 'spam', 'incident']; // labels: bulk.action.<name>
  let bulkArmed = null; // a destructive action waits for its second click
  function toggleSelect(number, on) {
    if (S.selAll) { // leaving "all matching": keep the loaded rows except this one
      S.selAll = false;
      for (const n of S.list.numbers) S.sel.add(n);
    }
    if (on) S.sel.add(number); else S.sel.delete(number);
    renderList();
    renderBulk();
  }
  function clearSelection(render = true) {
    S.sel.clear();
    S.selAll = false;
    bulkArmed = null;
    if (render) { renderList(); renderBulk(); }
  }
  function selectedCount() {
    return S.selAll ? (S.list.total ?? S.list.numbers.length) : S.sel.size;
  }
  function renderBulk() {
    const bar = $('#bulk');
    if (!bar) return;
    const n = selectedCount();
    bar.hidden = n === 0;
    document.body.classList.toggle('has-selection', n > 0);
    if (!n) return;
    $('#bulk-count').textContent = tr(S.selAll ? 'bulk.allSelected' : 'bulk.selected', { n });
    const total = S.list.total;
    const all = $('#bulk-all');
    all.hidden = S.selAll || !total || total <= S.sel.size || !(S.me && S.me.role === 'supervisor');
    all.textContent = tr('bulk.selectAll', { n: total || 0 });
    const go = $('#bulk-go');
    go.textContent = bulkArmed ? tr('bulk.confirm', { action: tr(`bulk.done.${bulkArmed}`), n }) : tr('bulk.apply');
    go.classList.toggle('btn-danger', !!bulkArmed);
  }
  async function renderBulkParam() {
    const action = $('#bulk-action').value;
    const box = $('#bulk-param');
    bulkArmed = null;
    let el = null;
    if (action === 'assign') {
      if (!S.agents) S.agents = (await api('/agent/api/agents')).agents;
      el = h('select', { class: 'input input-sm', testid: 'bulk-param' }, S.agents.map((a) => h('option', { value: String(a.id), text: a.name })));
    } else if (action === 'priority') {
      el = h('select', { class: 'input input-sm', testid: 'bulk-param' }, Object.keys(PRIORITY_RANK).map((p) => h('option', { value: p, text: priorityLabel(p) })));
    } else if (action === 'tag') {
      el = h('input', { class: 'input input-sm', testid: 'bulk-param', placeholder: tr('bulk.tagPlaceholder'), maxlength: '64' });
    } else if (action === 'resolve') {
      const items = await ensureCanned();
      const keys = [...new Set((items || []).map((c) => c.key))].filter((k) => ['en', 'zh'].every((l) => items.some((c) => c.key === k && c.lang === l)));
      el = h('select', { class: 'input input-sm', testid: 'bulk-param', title: tr('bulk.resolveHint') },
        keys.map((k) => h('option', { value: k, text: cannedTitle(items.find((c) => c.key === k) || { key: k }) })));
    } else if (action === 'incident') {
      await loadIncidents();
      el = h('select', { class: 'input input-sm', testid: 'bulk-param' }, S.incidents.filter((i) => i.status === 'active').map((i) => h('option', { value: String(i.id), text: i.title })));
    }
    box.replaceChildren(...(el ? [el] : []));
    renderBulk();
  }
  // The chosen action's parameter list (agents, canned replies, incidents) loads when the action
  // is picked; a click on "go" before it is there waits for it instead of saying nothing was chosen.
  let bulkParamReady = Promise.resolve();
  async function runBulk() {
    await bulkParamReady;
    const action = $('#bulk-action').value;
    if (!action) { toast(tr('bulk.chooseFirst'), { kind: 'warning' }); return; }
    const n = selectedCount();
    if (['resolve', 'spam', 'assign', 'priority'].includes(action) && (n > 1 || S.selAll) && bulkArmed !== action) {
      bulkArmed = action; // second click confirms
      renderBulk();
      setTimeout(() => { if (bulkArmed === action) { bulkArmed = null; renderBulk(); } }, 6000);
      return;
    }
    bulkArmed = null;
    const param = $('[data-testid="bulk-param"]', $('#bulk-param'));
    const value = param ? param.value.trim() : '';
    const target = S.selAll ? { all: Object.fromEntries(listParams()) } : { numbers: [...S.sel] };
    const go = $('#bulk-go');
    go.disabled = true;
    try {
      let res;
      if (action === 'incident') {
        if (!value) throw new ApiError(400, tr('bulk.noIncident'));
        res = await api(`/agent/api/incidents/${enc(value)}/link`, { method: 'POST', body: target });
        toast(tr(res.skipped ? 'bulk.linkedSkipped' : 'bulk.linked', { n: res.linked, skipped: res.skipped }), { kind: 'success', title: tr('bulk.linkedTitle') });
      } else {
        const params = action === 'assign' ? { agent_id: Number(value) } : action === 'priority' ? { priority: value }
          : action === 'tag' ? { tag: value } : action === 'resolve' ? { canned: value } : {};
        res = await api('/agent/api/bulk', { method: 'POST', body: { action, params, ...target } });
        const first = res.skipped_count ? res.skipped[0] : null;
        const why = first ? (first.code ? tOr(`error.${first.code}`, first.reason, localParams(first.params || {})) : first.reason) : '';
        const skipped = first ? tr(res.skipped_count > 1 ? 'bulk.skippedMore' : 'bulk.skipped', { n: res.skipped_count, number: first.number, why }) : '';
        toast(tr('bulk.changed', { n: res.done }) + skipped, { kind: res.done ? 'success' : 'warning', title: tr(`bulk.done.${action}`) });
      }
      clearSelection(false);
      refreshCounts();
      await loadList(true);
      loadIncidents();
    } catch (e) { actionError(e); } finally { go.disabled = false; renderBulk(); }
  }
  function wireBulk() {
    const sel = $('#bulk-action');
    fillBulkActions();
    sel.addEventListener('change', () => { bulkParamReady = renderBulkParam().catch((e) => actionError(e)); });
    $('#bulk-go').addEventListener('click', runBulk);
    $('#bulk-clear').addEventListener('click', () => clearSelection());
    $('#bulk-all').addEventListener('click', () => { S.selAll = true; S.sel.clear(); renderList(); renderBulk(); });
  }

  function fillBulkActions() {
    const sel = $('#bulk-action');
    const v = sel.value;
    sel.replaceChildren(h('option', { value: '', text: tr('bulk.action') }), ...BULK.map((k) => h('option', { value: k, text: tr(`bulk.action.${k}`) })));
    sel.value = v;
  }

  // ───────────────────────────── incidents ─────────────────────────────
  async function loadIncidents() {
    try {
      S.incidents = (await api('/agent/api/incidents')).incidents || [];
    } catch (e) { if (e.status !== 401) console.warn('switchboard: incidents', e); return; }
    renderIncidents();
  }
  const incidentTitle = (id) => ((S.incidents || []).find((i) => i.id === id) || {}).title || tr('incident.numbered', { id });
  function renderIncidents() {
    const box = $('#incident-list');
    if (!box) return;
    const active = S.incidents.filter((i) => i.status === 'active');
    box.replaceChildren(...(active.length ? active.map((i) => h('button', {
      type: 'button', class: `incident${S.filters.incident === String(i.id) ? ' on' : ''}`, testid: 'incident', 'data-id': String(i.id), translate: 'no',
      title: i.message_en, onclick: () => { S.view = 'all'; setField('incident', S.filters.incident === String(i.id) ? '' : String(i.id)); },
    }, icon('alert'), h('span', { class: 'incident-title', text: i.title }), h('span', { class: 'stat-n', testid: 'incident-linked', text: String(i.open_linked) })))
      : [h('div', { class: 'muted incident-none', text: tr('incident.none') })]));
    renderIncidentBar();
  }
  function renderIncidentBar() {
    const bar = $('#incident-bar');
    if (!bar) return;
    const inc = S.filters.incident && S.incidents.find((i) => String(i.id) === S.filters.incident);
    bar.hidden = !inc;
    if (!inc) return;
    const sup = S.me && S.me.role === 'supervisor';
    bar.replaceChildren(
      h('div', { class: 'incident-bar-head' }, icon('alert'), h('strong', { text: inc.title }),
        h('span', { class: 'muted', text: ` · ${tr('incident.openLinked', { n: inc.open_linked })} · ${tr(`incident.status.${inc.status}`)}` }), h('span', { class: 'spacer' }),
        sup && inc.status === 'active' ? h('button', { type: 'button', class: 'btn btn-ghost btn-sm', testid: 'incident-update', text: tr('incident.postUpdate'), onclick: () => openIncidentDlg('update', inc) }) : null,
        sup && inc.status === 'active' ? h('button', { type: 'button', class: 'btn btn-ghost btn-sm', testid: 'incident-resolve', text: tr('incident.resolve'), onclick: () => openIncidentDlg('resolve', inc) }) : null,
        h('button', { type: 'button', class: 'icon-btn', title: tr('incident.showAll'), 'aria-label': tr('incident.clearFilter'), onclick: () => setField('incident', '') }, icon('x'))),
      h('div', { class: 'incident-msg', text: `${inc.message_en}\n${inc.message_zh}` }));
  }
  let incidentMode = null;
  function openIncidentDlg(mode, inc) {
    incidentMode = { mode, inc };
    const dlg = $('#incident-dlg');
    $('#incident-dlg-title').replaceChildren(...(mode === 'new' ? [tr('incident.new')]
      : trParts(`incident.dlg.${mode}`, { title: h('span', { translate: 'no', text: inc.title }) })));
    $('#incident-new-fields').hidden = mode !== 'new';
    $('#incident-lead').textContent = tr(`incident.lead.${mode}`);
    for (const id of ['incident-title', 'incident-keywords', 'incident-en', 'incident-zh']) $(`#${id}`).value = '';
    if (mode === 'update') { $('#incident-en').value = inc.message_en; $('#incident-zh').value = inc.message_zh; }
    $('#incident-submit').textContent = tr(`incident.submit.${mode}`);
    dlg.showModal();
    (mode === 'new' ? $('#incident-title') : $('#incident-en')).focus();
  }
  async function submitIncident(e) {
    e.preventDefault();
    const { mode, inc } = incidentMode || {};
    const en = $('#incident-en').value.trim();
    const zh = $('#incident-zh').value.trim();
    const btn = $('#incident-submit');
    btn.disabled = true;
    try {
      if (mode === 'new') {
        const kws = $('#incident-keywords').value.split(/[,，\n]/).map((x) => x.trim()).filter(Boolean);
        const created = await api('/agent/api/incidents', { method: 'POST', body: { title: $('#incident-title').value.trim(), keywords: kws, en, zh } });
        toast(created.title, { kind: 'success', title: tr('incident.opened'), data: true });
      } else if (mode === 'update') {
        const r = await api(`/agent/api/incidents/${inc.id}/update`, { method: 'POST', body: { en, zh } });
        toast(tr('incident.reached', { n: r.reached }), { kind: 'success', title: tr('incident.updateSent') });
      } else {
        const r = await api(`/agent/api/incidents/${inc.id}/resolve`, { method: 'POST', body: { en, zh } });
        toast(tr('incident.resolvedN', { n: r.resolved }), { kind: 'success', title: tr('incident.resolved') });
      }
      $('#incident-dlg').close();
      await loadIncidents();
      refreshCounts();
      loadList(true).catch(() => {});
    } catch (err) { actionError(err); } finally { btn.disabled = false; }
  }
  function wireIncidents() {
    $('#incident-new').addEventListener('click', () => openIncidentDlg('new'));
    $('#incident-form').addEventListener('submit', (e) => { if (e.submitter && e.submitter.value === 'cancel') return; submitIncident(e); });
    $('#incident-cancel').addEventListener('click', () => $('#incident-dlg').close());
  }

  // ───────────────────────────── keyboard ─────────────────────────────
  function isTyping(el) {
    if (!el || el === document.body) return false;
    if (el.isContentEditable) return true;
    const tag = el.tagName;
    if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
    if (tag === 'INPUT') return !['button', 'checkbox', 'radio', 'submit', 'reset'].includes(el.type);
    return false;
  }
  function anyDialogOpen() { return $$('dialog').some((d) => d.open); }
  function onKey(e) {
    if (e.defaultPrevented) return; // handled by a field's own listener (composer, search, pickers)
    if (e.isComposing || e.keyCode === 229) return; // IME composition (Chinese input)
    if (anyDialogOpen()) return; // <dialog> handles Esc itself
    const typing = isTyping(document.activeElement);
    const mod = e.ctrlKey || e.metaKey;
    if (mod && !e.altKey && e.key.toLowerCase() === 'k') {
      if (S.detail) { e.preventDefault(); focusReply(S.mode); openCanned(true); }
      return;
    }
    if (typing) {
      if (e.key === 'Escape' && !canned.open) {
        if (document.activeElement.id === 'search' && S.q) return; // search input clears itself
        document.activeElement.blur();
      }
      return;
    }
    if (mod || e.altKey) return;
    const k = e.key;
    if (!S.detail && S.loading && 'crnepbti'.includes(k) && k.length === 1) {
      // the ticket is still loading: run the shortcut as soon as it is there
      e.preventDefault();
      const replay = { key: k, isComposing: false, keyCode: 0, ctrlKey: false, metaKey: false, altKey: false, defaultPrevented: false, preventDefault() {} };
      S.loading.then(() => { if (S.detail) onKey(replay); });
      return;
    }
    const t = S.detail && S.detail.ticket;
    let handled = true;
    switch (k) {
      case 'j': moveCursor(1); break;
      case 'k': moveCursor(-1); break;
      case 'ArrowDown': if (document.activeElement && document.activeElement.closest('#ticket-list')) moveCursor(1); else handled = false; break;
      case 'ArrowUp': if (document.activeElement && document.activeElement.closest('#ticket-list')) moveCursor(-1); else handled = false; break;
      case 'Enter': case 'o':
        if (S.cursor) openTicket(S.cursor); else if (S.visible && S.visible.length) openTicket(S.visible[0].number); else handled = false;
        break;
      case 'c': if (t) doClaim(); break;
      case 'r': if (t) focusReply('reply'); break;
      case 'n': if (t) focusReply('note'); break;
      case 'e': if (t) doResolve(); break;
      case 'p': if (t && isOpenStatus(t) && canAct(t)) doStatus(t.status === 'pending_user' ? 'open' : 'pending_user'); break;
      case 't': if (t) openTransfer(); break;
      case 'b': if (t) openBotWrong(); break;
      case 'i': if (t) toggleDetails(); break;
      case 'x': if (S.cursor) toggleSelect(S.cursor, !(S.selAll || S.sel.has(S.cursor))); else handled = false; break;
      case '/': $('#search').focus(); $('#search').select(); break;
      case '?': openHelp(); break;
      case '1': setView('queue'); break;
      case '2': setView('mine'); break;
      case '3': setView('all'); break;
      case '4': setView('resolved'); break;
      default: handled = false;
    }
    if (handled) e.preventDefault();
  }

  // ───────────────────────────── boot ─────────────────────────────
  function wireConsole() {
    hydrateIcons();
    try { S.showDetails = localStorage.getItem('sb_details') !== '0'; } catch { /* ignore */ }
    for (const b of $$('.view')) b.addEventListener('click', () => setView(b.dataset.view));
    for (const c of $$('#filters .chip')) c.addEventListener('click', () => setFilter(c.dataset.filter, c.dataset.value));
    const search = $('#search');
    search.addEventListener('input', () => { S.q = search.value.trim(); runSearch(); });
    $('#ticket-list').addEventListener('scroll', () => maybeLoadMore(), { passive: true });
    for (const k of ['status', 'topic', 'assignee', 'since', 'until']) {
      const el = $(`#f-${k}`);
      if (el) el.addEventListener('change', () => setField(k, el.value));
    }
    wireBulk();
    wireIncidents();
    search.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.preventDefault(); if (search.value) { search.value = ''; S.q = ''; reloadList(); } else search.blur(); }
      if (e.key === 'Enter') { e.preventDefault(); search.blur(); if (S.visible && S.visible.length) { S.cursor = S.visible[0].number; openTicket(S.cursor); } }
      if (e.key === 'ArrowDown') { e.preventDefault(); search.blur(); moveCursor(1); }
    });
    $('#help-btn').addEventListener('click', openHelp);
    $('#logout-btn').addEventListener('click', logout);
    $('#new-msgs').addEventListener('click', () => scrollToBottom());
    $('#messages').addEventListener('scroll', () => { if (isNearBottom($('#messages'))) $('#new-msgs').hidden = true; });

    // composer
    const input = ta();
    for (const b of $$('.ctab')) b.addEventListener('click', () => { setMode(b.dataset.mode); ta().focus(); });
    $('#reply-send').addEventListener('click', send);
    $('#canned-btn').addEventListener('click', () => { ta().focus(); openCanned(true); });
    input.addEventListener('keydown', (e) => {
      if (cannedKey(e)) return;
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); return; }
      if (e.key === 'Escape') { e.preventDefault(); input.blur(); }
    });
    input.addEventListener('input', (e) => {
      autosize();
      const pos = input.selectionStart;
      if (!canned.open && e.inputType === 'insertText' && e.data === '/') {
        const before = input.value.slice(0, pos - 1);
        if (!before || /\s$/.test(before)) { canned.from = pos - 1; openCanned(false); }
      } else if (canned.open && !canned.viaSearch) {
        const q = input.value.slice(canned.from + 1, pos);
        if (pos <= canned.from || input.value[canned.from] !== '/' || /\s/.test(q)) closeCanned(false);
        else renderCanned();
      }
      saveDraftSoon();
    });
    input.addEventListener('blur', () => { setTimeout(() => { if (canned.open && !canned.viaSearch && document.activeElement !== input) closeCanned(false); }, 120); saveDraft(); });
    const filter = $('#canned-filter');
    filter.addEventListener('input', () => { canned.idx = 0; renderCanned(); });
    filter.addEventListener('keydown', (e) => { cannedKey(e); });
    filter.addEventListener('blur', () => setTimeout(() => { if (canned.open && canned.viaSearch && document.activeElement !== filter) closeCanned(false); }, 120));
    document.addEventListener('mousedown', (e) => { if (canned.open && !e.target.closest('#canned-pop') && e.target !== input) closeCanned(false); });

    // dialogs
    const tf = $('#transfer-filter');
    tf.addEventListener('input', () => { transfer.idx = 0; renderTransfer(); });
    tf.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowDown') { e.preventDefault(); transfer.idx = Math.min(transfer.items.length - 1, transfer.idx + 1); renderTransfer(); }
      else if (e.key === 'ArrowUp') { e.preventDefault(); transfer.idx = Math.max(0, transfer.idx - 1); renderTransfer(); }
      else if (e.key === 'Enter') { e.preventDefault(); doTransfer(); }
    });
    $('#transfer-form').addEventListener('submit', (e) => { if (e.submitter && e.submitter.value === 'cancel') return; e.preventDefault(); });
    $('#bw-topic').addEventListener('change', fillIntents);
    $('#botwrong-form').addEventListener('submit', (e) => { if (e.submitter && e.submitter.value === 'cancel') return; submitBotWrong(e); });
    $('#bw-cancel').addEventListener('click', () => $('#botwrong-dlg').close());
    for (const dlg of $$('dialog')) {
      dlg.addEventListener('click', (e) => { if (e.target === dlg) dlg.close(); }); // backdrop click
      dlg.addEventListener('close', () => { if (S.detail && document.activeElement === document.body) $('#ticket-list').focus({ preventScroll: true }); });
    }

    document.addEventListener('keydown', onKey);
    window.addEventListener('hashchange', () => {
      const n = decodeURIComponent(location.hash.slice(1));
      if (/^SB-\d+$/i.test(n) && n !== S.openNumber) openTicket(n.toUpperCase());
    });
    window.addEventListener('online', () => { if (!S.ws) connectWS(); });
    window.addEventListener('resize', debounce(placeToasts, 100));
    setInterval(tickSla, 1000);
    setInterval(() => { refreshRelTimes(); refreshCounts(); }, 20000);
  }
  const saveDraftSoon = debounce(saveDraft, 300);

  async function logout() {
    try {
      await fetch('/agent/logout', {
        method: 'POST', credentials: 'same-origin',
        headers: { 'X-CSRF-Token': (S.me && S.me.csrf) || '', 'Content-Type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf: (S.me && S.me.csrf) || '' }),
      });
    } catch { /* go to the login page anyway */ }
    location.assign('/agent/login');
  }

  function savedLang() {
    try { return localStorage.getItem(LANG_STORE); } catch { return null; }
  }
  async function loadLangs() {
    if (!I18N.langs.length) I18N.langs = (await fetchJSON('/agent/static/i18n/languages.json')).languages;
  }
  function renderMe() {
    const me = S.me;
    $('#me-role').textContent = tr(`role.${me.role === 'supervisor' ? 'supervisor' : 'agent'}`);
  }
  /** The agent picked another language: everything on screen again, no reload; saved on the server. */
  async function switchLang(code) {
    await setLang(code);
    if (S.me) {
      S.me.locale = I18N.code;
      renderMe();
      api('/agent/api/me/locale', { method: 'PUT', body: { locale: I18N.code } }).catch((e) => actionError(e));
    }
    fillBulkActions();
    $('#help-grid').replaceChildren();
    setConn(...connNow);
    for (const li of rowEls.values()) li.dataset.sig = ''; // refill every row
    renderAll();
    renderBulk();
    if (S.incidents) renderIncidents();
    if (S.detail) showDetail(S.detail, true);
    if (canned.open) renderCanned();
    refreshRelTimes();
  }
  async function initConsole() {
    let me;
    let langReady = null;
    try {
      await loadLangs();
      langReady = setLang(pickLang(savedLang())); // shown while /me answers; the agent's own choice follows
    } catch (e) { console.warn('switchboard: language', e); }
    try {
      const t0 = Date.now();
      const res = await api('/agent/api/me', { raw: true });
      const t1 = Date.now();
      if (!res.ok) throw new ApiError(res.status, res.statusText);
      me = await res.json();
      const date = Date.parse(res.headers.get('Date') || '');
      if (!Number.isNaN(date)) {
        const skew = date - (t0 + t1) / 2;
        if (Math.abs(skew) > 3000) clockSkew = skew; // Date has 1 s resolution; only fix real drift
      }
    } catch (e) {
      if (e.status !== 401) {
        await langReady;
        $('#ticket-list').replaceChildren(h('li', { class: 'list-empty' }, icon('alert', 'empty-ico'), h('strong', { text: tr('boot.unreachable') }),
          h('span', { text: e.message }), h('button', { type: 'button', class: 'btn btn-ghost btn-sm', text: tr('boot.retry'), onclick: () => location.reload() })));
      }
      return;
    }
    S.me = me;
    await langReady;
    if (me.locale && me.locale !== I18N.code) await setLang(me.locale).catch(() => {});
    wireConsole();
    $('#lang-select').addEventListener('change', (ev) => { switchLang(ev.target.value).catch((x) => actionError(x)); });
    renderViewNav();
    renderList(); // skeleton
    $('#me-name').textContent = me.name;
    renderMe();
    $('#me').title = me.email || '';
    const av = avatar(me.name, 'avatar-sm avatar-me');
    $('#me-avatar').replaceWith(av);
    av.id = 'me-avatar';
    document.body.classList.toggle('is-supervisor', me.role === 'supervisor');
    document.body.classList.remove('is-loading');

    connectWS();
    try {
      await refreshAll();
    } catch (e) {
      actionError(e);
    }
    const fromHash = decodeURIComponent(location.hash.slice(1));
    if (/^SB-\d+$/i.test(fromHash)) openTicket(fromHash.toUpperCase());
    else if (S.visible && S.visible.length) { S.cursor = S.visible[0].number; renderList(); }
    // warm the small lookups in the background so dialogs open instantly
    ensureCanned();
    api('/agent/api/agents').then((d) => { // the assignee filter lists the team
      S.agents = d.agents;
      $('#f-assignee').append(...d.agents.map((a) => h('option', { value: String(a.id), text: a.name })));
    }).catch(() => {});
    api('/agent/api/intents').then((d) => { S.intents = d; }).catch(() => {});
  }

  // ───────────────────────────── entry ─────────────────────────────
  async function start() {
    const page = document.body && document.body.dataset.page;
    if (page === 'login') {
      try {
        await loadLangs();
        await setLang(pickLang(savedLang()));
      } catch (e) { console.warn('switchboard: language', e); }
      document.body.classList.remove('is-loading');
      initLogin();
    } else if (page === 'console') initConsole();
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
