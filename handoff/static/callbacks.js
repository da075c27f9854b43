// The Callbacks view: list (due soonest first), claim, done / no answer / reschedule.
(function () {
  'use strict';
  let me = null;
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, kids) {
    const e = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => { if (k === 'text') e.textContent = v; else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v); });
    (kids || []).forEach((c) => e.append(c));
    return e;
  }
  function fmt(iso, tz) {
    try { return new Date(iso).toLocaleString('en-GB', { timeZone: tz, dateStyle: 'medium', timeStyle: 'short' }); } catch (e) { return iso; }
  }
  async function api(path, opts) {
    const res = await fetch(path, Object.assign({ credentials: 'same-origin' }, opts || {}));
    if (res.status === 401) { location.href = '/agent/login'; throw new Error('sign in'); }
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.detail || ('HTTP ' + res.status));
    return body;
  }
  async function act(id, action, window) {
    $('error').textContent = '';
    try {
      await api(`/agent/api/callbacks/${id}/${action}`, {
        method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf },
        body: JSON.stringify(window ? { window } : {}),
      });
    } catch (e) { $('error').textContent = e.message; }
    load();
  }
  function row(c) {
    const mine = c.assignee && c.assignee.id === me.id;
    const when = el('input', { placeholder: '14:00-16:00', 'data-testid': 'cb-window', 'aria-label': 'New window' });
    const actions = [];
    if (!c.assignee) actions.push(el('button', { class: 'primary', 'data-testid': 'cb-claim', text: 'Claim', onclick: () => act(c.id, 'claim') }));
    if (!c.assignee || mine || me.role === 'supervisor') {
      actions.push(el('button', { 'data-testid': 'cb-done', text: 'Done', onclick: () => act(c.id, 'done') }));
      actions.push(el('button', { 'data-testid': 'cb-no-answer', text: 'No answer', onclick: () => act(c.id, 'no_answer') }));
      actions.push(when, el('button', { 'data-testid': 'cb-reschedule', text: 'Reschedule', onclick: () => act(c.id, 'reschedule', when.value) }));
    }
    return el('tr', { 'data-testid': 'cb-row', 'data-ticket': c.ticket, 'data-sla': c.sla, 'data-status': c.status }, [
      el('td', {}, [fmt(c.due_at), el('div', { class: 'muted', text: c.sla === 'breached' ? 'window missed' : (c.sla === 'due' ? 'due now' : '') })]),
      el('td', {}, [el('a', { href: '/agent#' + c.ticket, text: c.ticket }), ' ', c.vip > 0 ? el('span', { class: 'vip', text: 'VIP ' + c.vip }) : '',
        el('div', { class: 'muted', text: c.topic + ' · writes ' + (c.lang === 'zh' ? 'Chinese' : 'English') })]),
      el('td', {}, [el('a', { href: 'tel:' + c.phone, 'data-testid': 'cb-phone', text: c.phone })]),
      el('td', {}, [fmt(c.window_start, c.tz) + ' – ' + fmt(c.window_end, c.tz), el('div', { class: 'muted', text: c.tz })]),
      el('td', { 'data-testid': 'cb-agent', text: c.assignee ? c.assignee.name : '—' }),
      el('td', {}, actions),
    ]);
  }
  async function load() {
    const body = await api('/agent/api/callbacks');
    const rows = $('rows');
    rows.textContent = '';
    body.callbacks.forEach((c) => rows.append(row(c)));
    $('empty').hidden = body.callbacks.length > 0;
  }
  api('/agent/api/me').then((m) => { me = m; load(); setInterval(load, 10000); });
})();
