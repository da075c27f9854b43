/*!
 * Switchboard web chat widget.
 * Plain JavaScript, no dependencies, no build step. Embed with one tag:
 *   <script src="https://support.example.com/widget.js" async></script>
 * Optional attributes: data-lang="zh|en", data-title, data-color, data-open="true".
 * Icons are drawn from Feather-style strokes (MIT).
 */
(function () {
  'use strict';

  if (typeof window === 'undefined' || typeof document === 'undefined') return;
  if (window.Switchboard && window.Switchboard.__switchboard) return; // loaded twice

  // ---------------------------------------------------------------- config --
  // document.currentScript is only set while this file is first executing, so
  // capture it now (async scripts included). Fall back to the last widget.js tag.
  const SCRIPT = document.currentScript || (function () {
    const all = document.getElementsByTagName('script');
    for (let i = all.length - 1; i >= 0; i--) {
      if (/\/widget\.js(?:[?#]|$)/.test(all[i].src || '')) return all[i];
    }
    return null;
  })();

  function attr(name) {
    const v = SCRIPT && SCRIPT.getAttribute(name);
    return v == null ? null : String(v).trim();
  }

  const ORIGIN = (function () {
    try {
      // script.src is already resolved to an absolute URL, also for src="/widget.js".
      if (SCRIPT && SCRIPT.src) {
        const o = new URL(SCRIPT.src, document.baseURI).origin;
        if (o && o !== 'null') return o;
      }
    } catch (_) { /* fall through */ }
    return window.location.origin;
  })();
  const WS_URL = ORIGIN.replace(/^http/i, 'ws') + '/ws/chat';

  const LANG = (function () {
    const v = (attr('data-lang') || '').toLowerCase();
    if (v === 'zh' || v === 'en') return v;
    const nav = String((navigator.languages && navigator.languages[0]) || navigator.language || '').toLowerCase();
    return nav.indexOf('zh') === 0 ? 'zh' : 'en';
  })();
  const LOCALE = LANG === 'zh' ? 'zh-CN' : 'en-US';

  const MAX_LEN = 2000;
  // What /widget/upload accepts (the server checks again; web channel `allowed_attachment_types`).
  // The same list as bot/files.py DEFAULT_ATTACHMENT_TYPES (every channel keeps the same files).
  const FILE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'application/pdf', 'text/plain', 'video/mp4'];
  const MAX_FILE_BYTES = 10 * 1048576;
  const COUNTER_FROM = 1800;
  const TYPING_MAX_MS = 15000;
  const PING_MS = 25000;
  const BACKOFF_MIN = 500;
  const BACKOFF_MAX = 15000;
  const K_SESSION = 'switchboard.session';
  const K_OUTBOX = 'switchboard.outbox';
  const K_LAST_SEEN = 'switchboard.last_seen';
  const K_LAST_READ = 'switchboard.last_read';

  const STRINGS = {
    en: {
      title: 'Support',
      placeholder: 'Type your question…',
      greeting: 'Hi! Ask me about deposits, withdrawals, KYC, fees or security. We will never ask for your password, seed phrase or 2FA codes.',
      online: 'Online',
      connecting: 'Connecting…',
      reconnecting: 'Reconnecting…',
      offline: 'Offline',
      bannerOffline: 'You are offline. Messages will be sent when your connection is back.',
      bannerReconnecting: 'Connection lost. Reconnecting… Your messages are kept and will be sent automatically.',
      bannerConnecting: 'Can’t reach support right now. Retrying… Your messages will be sent automatically.',
      openChat: 'Open support chat',
      closeChat: 'Close support chat',
      minimize: 'Minimize chat',
      send: 'Send message',
      suggested: 'Help articles',
      attach: 'Attach a screenshot or file',
      fileTooLarge: 'That file is too large (the limit is {max} MB).',
      fileType: 'That kind of file cannot be sent here. Images (PNG, JPEG, GIF, WebP), PDF, text files and MP4 videos are accepted.',
      fileNotReady: 'Still connecting — please attach the file again in a moment.',
      inputLabel: 'Message',
      conversation: 'Conversation with support',
      agent: 'Agent',
      bot: 'Support',
      you: 'You',
      youSaid: 'You said:',
      botSaid: 'Support said:',
      agentSaid: 'Agent said:',
      sending: 'Sending…',
      sent: 'Sent',
      failed: 'Not sent',
      retry: 'Retry',
      typing: 'Support is typing…',
      newMessages: 'New messages',
      tooLong: 'Your message is too long (maximum 2000 characters).',
      unread: (n) => n + (n === 1 ? ' unread message' : ' unread messages'),
      dismiss: 'Dismiss',
      justNow: 'now',
      powered: 'Powered by Switchboard',
      newTab: '(opens in a new tab)',
      quickReplies: 'Suggested replies',
      errors: {
        too_long: 'Your message is too long (maximum 2000 characters).',
        rate_limited: 'You are sending messages too quickly. Please wait a moment and try again.',
        invalid: 'This message could not be sent.',
        unavailable: 'Support is temporarily unavailable. Please try again shortly.',
      },
    },
    zh: {
      title: '在线客服',
      placeholder: '请输入您的问题…',
      greeting: '您好！关于充值、提现、实名认证（KYC）、手续费或账户安全的问题，都可以问我。我们绝不会向您索要密码、助记词或双重验证（2FA）码。',
      online: '在线',
      connecting: '正在连接…',
      reconnecting: '正在重新连接…',
      offline: '网络已断开',
      bannerOffline: '您当前处于离线状态，网络恢复后消息将自动发送。',
      bannerReconnecting: '连接已断开，正在重新连接… 您的消息已保留，恢复后将自动发送。',
      bannerConnecting: '暂时无法连接客服，正在重试… 您的消息将在连接后自动发送。',
      openChat: '打开在线客服',
      closeChat: '关闭在线客服',
      minimize: '收起对话',
      send: '发送消息',
      suggested: '相关帮助文章',
      attach: '添加截图或文件',
      fileTooLarge: '文件太大（上限 {max} MB）。',
      fileType: '不支持该文件类型。可以发送图片（PNG、JPEG、GIF、WebP）、PDF、文本文件和 MP4 视频。',
      fileNotReady: '正在连接，请稍后重新添加文件。',
      inputLabel: '消息',
      conversation: '与客服的对话',
      agent: '客服',
      bot: '智能客服',
      you: '我',
      youSaid: '我说：',
      botSaid: '智能客服说：',
      agentSaid: '客服说：',
      sending: '发送中…',
      sent: '已发送',
      failed: '发送失败',
      retry: '重试',
      typing: '客服正在输入…',
      newMessages: '有新消息',
      tooLong: '消息过长（最多 2000 个字符）。',
      unread: (n) => n + ' 条未读消息',
      dismiss: '关闭',
      justNow: '刚刚',
      powered: '由 Switchboard 提供支持',
      newTab: '（在新标签页中打开）',
      quickReplies: '快捷回复',
      errors: {
        too_long: '消息过长（最多 2000 个字符）。',
        rate_limited: '您发送消息过于频繁，请稍候再试。',
        invalid: '该消息无法发送。',
        unavailable: '客服暂时不可用，请稍后再试。',
      },
    },
  };
  const T = STRINGS[LANG];
  const TITLE = attr('data-title') || T.title;
  const START_OPEN = (attr('data-open') || '').toLowerCase() === 'true';
  const COLOR = (function () {
    const c = attr('data-color');
    try { if (c && window.CSS && CSS.supports && CSS.supports('color', c)) return c; } catch (_) { /* ignore */ }
    return '#2f5bea';
  })();

  const REDUCED_MOTION = !!(window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches);

  // --------------------------------------------------------------- storage --
  function sGet(k) {
    try { return window.localStorage.getItem(k); } catch (_) { return null; }
  }
  function sSet(k, v) {
    try {
      if (v == null) window.localStorage.removeItem(k);
      else window.localStorage.setItem(k, v);
    } catch (_) { /* storage disabled or full: keep working in memory */ }
  }
  function outboxLoad() {
    try {
      const v = JSON.parse(sGet(K_OUTBOX) || '[]');
      return Array.isArray(v)
        ? v.filter((x) => x && typeof x.client_id === 'string' && typeof x.text === 'string')
        : [];
    } catch (_) { return []; }
  }
  function outboxSave(list) {
    sSet(K_OUTBOX, list.length ? JSON.stringify(list.slice(-50)) : null);
  }
  function outboxPut(item) {
    const list = outboxLoad().filter((x) => x.client_id !== item.client_id);
    list.push(item);
    outboxSave(list);
  }
  function outboxRemove(cid) {
    const list = outboxLoad();
    const next = list.filter((x) => x.client_id !== cid);
    if (next.length !== list.length) outboxSave(next);
  }
  function outboxPatch(cid, patch) {
    const list = outboxLoad();
    let hit = false;
    list.forEach((x) => { if (x.client_id === cid) { Object.assign(x, patch); hit = true; } });
    if (hit) outboxSave(list);
  }

  // --------------------------------------------------------------- helpers --
  function uuid() {
    const c = window.crypto;
    if (c && typeof c.randomUUID === 'function') {
      try { return c.randomUUID(); } catch (_) { /* insecure context */ }
    }
    const b = new Uint8Array(16);
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
    return h.slice(0, 8) + '-' + h.slice(8, 12) + '-' + h.slice(12, 16) + '-' + h.slice(16, 20) + '-' + h.slice(20);
  }

  // Length in Unicode code points (what a Python server counts), not UTF-16 units.
  function cpLen(s) {
    let n = 0;
    for (const _ of s) n++; // eslint-disable-line no-unused-vars
    return n;
  }

  // Compare server ids such as "1732790000000-0" (Redis-stream style); falls
  // back to numeric then plain string comparison for other monotonic formats.
  function cmpId(a, b) {
    const ra = /^(\d+)-(\d+)$/.exec(a);
    const rb = /^(\d+)-(\d+)$/.exec(b);
    if (ra && rb) {
      const d = cmpDigits(ra[1], rb[1]);
      return d !== 0 ? d : cmpDigits(ra[2], rb[2]);
    }
    if (/^\d+$/.test(a) && /^\d+$/.test(b)) return cmpDigits(a, b);
    return a < b ? -1 : a > b ? 1 : 0;
  }
  function cmpDigits(a, b) {
    a = a.replace(/^0+(?=\d)/, '');
    b = b.replace(/^0+(?=\d)/, '');
    if (a.length !== b.length) return a.length < b.length ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  }

  const fmtTime = new Intl.DateTimeFormat(LOCALE, { hour: 'numeric', minute: '2-digit' });
  const fmtDay = new Intl.DateTimeFormat(LOCALE, { month: 'short', day: 'numeric', hour: 'numeric', minute: '2-digit' });
  const fmtFull = new Intl.DateTimeFormat(LOCALE, { dateStyle: 'full', timeStyle: 'short' });
  function parseTs(ts) {
    const d = ts ? new Date(ts) : new Date();
    return isNaN(d.getTime()) ? new Date() : d;
  }
  function shortTime(d) {
    const now = new Date();
    const same = d.getFullYear() === now.getFullYear() && d.getMonth() === now.getMonth() && d.getDate() === now.getDate();
    return same ? fmtTime.format(d) : fmtDay.format(d);
  }

  // Tiny DOM builder. Text is always set through textContent / text nodes.
  function h(tag, props, children) {
    const el = document.createElement(tag);
    if (props) {
      for (const k of Object.keys(props)) {
        const v = props[k];
        if (v == null || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k.slice(0, 2) === 'on' && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    if (children) {
      for (const c of [].concat(children)) {
        if (c == null || c === false) continue;
        el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
      }
    }
    return el;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const ICONS = {
    chat: ['M21 11.5a8.38 8.38 0 0 1-.9 3.8 8.5 8.5 0 0 1-7.6 4.7 8.38 8.38 0 0 1-3.8-.9L3 21l1.9-5.7a8.38 8.38 0 0 1-.9-3.8 8.5 8.5 0 0 1 4.7-7.6 8.38 8.38 0 0 1 3.8-.9h.5a8.48 8.48 0 0 1 8 8v.5z'],
    close: ['M18 6L6 18', 'M6 6l12 12'],
    down: ['M6 9l6 6 6-6'],
    arrowDown: ['M12 5v14', 'M19 12l-7 7-7-7'],
    send: ['M22 2L11 13', 'M22 2l-7 20-4-9-9-4 20-7z'],
    clock: ['M22 12a10 10 0 1 1-20 0 10 10 0 1 1 20 0z', 'M12 7v5l3 2'],
    check: ['M20 6L9 17l-5-5'],
    alert: ['M22 12a10 10 0 1 1-20 0 10 10 0 1 1 20 0z', 'M12 8v4', 'M12 16h.01'],
    headset: ['M3 18v-6a9 9 0 0 1 18 0v6', 'M21 19a2 2 0 0 1-2 2h-1a2 2 0 0 1-2-2v-3a2 2 0 0 1 2-2h3z', 'M3 19a2 2 0 0 0 2 2h1a2 2 0 0 0 2-2v-3a2 2 0 0 0-2-2H3z'],
    shield: ['M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z', 'M9 12l2 2 4-4'],
    clip: ['M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48'],
  };
  function icon(name, size, filled) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('width', String(size || 20));
    svg.setAttribute('height', String(size || 20));
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.setAttribute('fill', filled ? 'currentColor' : 'none');
    svg.setAttribute('stroke', 'currentColor');
    svg.setAttribute('stroke-width', filled ? '1.5' : '2');
    svg.setAttribute('stroke-linecap', 'round');
    svg.setAttribute('stroke-linejoin', 'round');
    svg.classList.add('ic', 'ic-' + name);
    for (const d of ICONS[name]) {
      const p = document.createElementNS(SVG_NS, 'path');
      p.setAttribute('d', d);
      svg.appendChild(p);
    }
    return svg;
  }

  // Append text to `parent`, turning https:// URLs into safe anchors.
  const URL_RE = /https:\/\/[^\s<>"'`\u3000-\u303f\uff00-\uffef]+/g;
  function appendLinkified(parent, text) {
    let last = 0;
    let m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text)) !== null) {
      let url = m[0];
      const trail = /[.,;:!?)\]}'"]+$/.exec(url);
      if (trail) url = url.slice(0, url.length - trail[0].length);
      let ok = false;
      try { ok = new URL(url).protocol === 'https:' && url.length > 8; } catch (_) { ok = false; }
      if (!ok) continue;
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      const a = h('a', { href: url, target: '_blank', rel: 'noopener noreferrer nofollow', title: url + ' ' + T.newTab });
      a.textContent = url;
      parent.appendChild(a);
      last = m.index + url.length;
      URL_RE.lastIndex = last;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function initials(name) {
    const s = String(name || '').trim();
    if (!s) return '';
    const parts = s.split(/\s+/).filter(Boolean);
    const first = Array.from(parts[0])[0] || '';
    const second = parts.length > 1 ? (Array.from(parts[parts.length - 1])[0] || '') : '';
    return (first + second).toUpperCase();
  }

  // ------------------------------------------------------------------- CSS --
  const CSS_TEXT = `
:host { all: initial; }
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
.root {
  --sb-accent: #2f5bea;
  --sb-on-accent: #ffffff;
  --sb-accent-ink: var(--sb-accent);
  --sb-accent-soft: #eef2fe;
  --sb-accent-ring: rgba(47, 91, 234, .28);
  --sb-text: #141922;
  --sb-muted: #6b7482;
  --sb-faint: #9aa2af;
  --sb-line: #e9ecf1;
  --sb-bot-bg: #f1f3f6;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans",
    "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "Noto Sans CJK SC", "Source Han Sans SC", sans-serif;
  font-size: 14px; line-height: 1.5; color: var(--sb-text);
  -webkit-font-smoothing: antialiased; -moz-osx-font-smoothing: grayscale;
  -webkit-text-size-adjust: 100%; text-size-adjust: 100%;
}
button { font: inherit; color: inherit; }
button:focus-visible, a:focus-visible, textarea:focus-visible { outline: 2px solid var(--sb-accent); outline-offset: 2px; }
.sr, .bubble[data-sr]::before, .st::after { position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }

/* launcher */
.launcher {
  position: fixed; right: 20px; bottom: 20px; z-index: 3;
  width: 60px; height: 60px; border-radius: 50%; border: 0; padding: 0; cursor: pointer;
  background: var(--sb-accent); color: var(--sb-on-accent);
  display: grid; place-items: center;
  box-shadow: 0 8px 24px rgba(15, 23, 42, .22), 0 2px 6px rgba(15, 23, 42, .14);
  transition: transform .2s cubic-bezier(.2,.8,.2,1), box-shadow .2s ease;
  -webkit-tap-highlight-color: transparent;
}
.launcher:hover { transform: scale(1.06); box-shadow: 0 10px 28px rgba(15, 23, 42, .26), 0 2px 6px rgba(15, 23, 42, .14); }
.launcher:active { transform: scale(.96); }
.launcher:focus-visible { outline: 3px solid var(--sb-accent-ring); outline-offset: 3px; }
.launcher .ic { position: absolute; transition: transform .28s cubic-bezier(.2,.8,.2,1), opacity .2s ease; }
.launcher .ic-chat { width: 28px; height: 28px; }
.launcher .ic-down { width: 28px; height: 28px; opacity: 0; transform: rotate(-90deg) scale(.5); }
.launcher[aria-expanded="true"] .ic-chat { opacity: 0; transform: rotate(90deg) scale(.5); }
.launcher[aria-expanded="true"] .ic-down { opacity: 1; transform: none; }
.badge {
  position: absolute; top: -3px; right: -3px; min-width: 22px; height: 22px; padding: 0 6px;
  border-radius: 11px; background: #ef4444; color: #fff; font-size: 12px; font-weight: 700;
  line-height: 22px; text-align: center; box-shadow: 0 0 0 2px #fff; font-variant-numeric: tabular-nums;
  animation: sb-pop .3s cubic-bezier(.2,.8,.2,1.4);
}

/* unread preview card */
.preview {
  position: fixed; right: 20px; bottom: 94px; z-index: 2; width: 300px; max-width: calc(100vw - 40px);
  background: #fff; color: var(--sb-text); border-radius: 16px; padding: 14px 36px 14px 14px; cursor: pointer;
  box-shadow: 0 10px 36px rgba(15, 23, 42, .18), 0 1px 3px rgba(15, 23, 42, .08);
  display: flex; gap: 10px; align-items: flex-start; text-align: left; border: 0;
  animation: sb-rise .3s cubic-bezier(.2,.8,.2,1);
}
.preview .pv-body { min-width: 0; }
.preview .pv-from { font-size: 12px; font-weight: 600; color: var(--sb-muted); margin-bottom: 2px; }
.preview .pv-text {
  font-size: 13.5px; line-height: 1.45; white-space: pre-wrap; overflow-wrap: anywhere;
  display: -webkit-box; -webkit-line-clamp: 3; -webkit-box-orient: vertical; overflow: hidden;
}
.preview .pv-x {
  position: absolute; top: 8px; right: 8px; width: 24px; height: 24px; border: 0; border-radius: 50%;
  background: #f1f3f6; color: var(--sb-muted); display: grid; place-items: center; cursor: pointer; padding: 0;
}
.preview .pv-x:hover { background: #e6e9ee; color: var(--sb-text); }

/* panel */
.panel {
  position: fixed; right: 20px; bottom: 92px; z-index: 4;
  width: 370px; height: 560px; max-height: calc(100vh - 112px); max-width: calc(100vw - 40px);
  background: #fff; border-radius: 18px; overflow: hidden;
  display: flex; flex-direction: column;
  box-shadow: 0 16px 56px rgba(15, 23, 42, .24), 0 2px 10px rgba(15, 23, 42, .10);
  opacity: 0; visibility: hidden; transform: translateY(16px) scale(.97); transform-origin: 100% 100%;
  transition: opacity .18s ease, transform .22s cubic-bezier(.2,.8,.2,1), visibility 0s linear .22s;
}
.panel.is-open {
  opacity: 1; visibility: visible; transform: none;
  transition: opacity .2s ease, transform .26s cubic-bezier(.2,.8,.2,1), visibility 0s;
}

.header {
  flex: none; display: flex; align-items: center; gap: 12px; padding: 16px 12px 16px 18px;
  background: var(--sb-accent); color: var(--sb-on-accent);
  background-image: linear-gradient(135deg, rgba(255,255,255,.14), rgba(255,255,255,0) 55%), radial-gradient(120% 140% at 100% 0%, rgba(0,0,0,.18), rgba(0,0,0,0) 60%);
}
.h-avatar {
  position: relative; flex: none; width: 42px; height: 42px; border-radius: 50%;
  display: grid; place-items: center; background: rgba(255,255,255,.2); color: var(--sb-on-accent);
  box-shadow: inset 0 0 0 1px rgba(255,255,255,.25);
}
.h-avatar .dot { position: absolute; right: -1px; bottom: -1px; }
.h-text { flex: 1; min-width: 0; }
.h-title { margin: 0; font-size: 16.5px; font-weight: 650; line-height: 1.3; letter-spacing: -.01em; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.status { display: flex; align-items: center; gap: 6px; margin-top: 2px; font-size: 12.5px; line-height: 1.3; opacity: .92; }
.dot { width: 10px; height: 10px; border-radius: 50%; background: #9aa2af; box-shadow: 0 0 0 2px var(--sb-accent); flex: none; }
.status .dot { width: 8px; height: 8px; box-shadow: none; }
.root[data-conn="online"] .dot { background: #22c55e; }
.root[data-conn="connecting"] .dot { background: #f59e0b; animation: sb-pulse 1.2s ease-in-out infinite; }
.root[data-conn="offline"] .dot { background: #9aa2af; }
.iconbtn {
  flex: none; width: 36px; height: 36px; border: 0; border-radius: 10px; padding: 0; cursor: pointer;
  background: transparent; color: inherit; display: grid; place-items: center; opacity: .9;
  transition: background-color .15s ease, opacity .15s ease;
}
.iconbtn:hover { background: rgba(255,255,255,.16); opacity: 1; }
.iconbtn:focus-visible { outline: 2px solid currentColor; outline-offset: -2px; }

.banner {
  flex: none; display: flex; gap: 8px; align-items: flex-start; padding: 9px 16px;
  font-size: 12.5px; line-height: 1.4; background: #fff8e6; color: #8a5a00; border-bottom: 1px solid #f6e7bf;
}
.banner .ic { flex: none; margin-top: 1px; }

.main { position: relative; flex: 1; min-height: 0; display: flex; flex-direction: column; }
.body {
  flex: 1; min-height: 0; overflow-y: auto; overscroll-behavior: contain;
  padding: 14px 16px 12px; background: #fff;
  scrollbar-width: thin; scrollbar-color: #d6dae1 transparent;
}
.body::-webkit-scrollbar { width: 8px; }
.body::-webkit-scrollbar-thumb { background: #d6dae1; border-radius: 4px; border: 2px solid #fff; }
.list { display: flex; flex-direction: column; }

.row { display: flex; flex-direction: column; margin-top: 14px; min-width: 0; }
.row:first-child, .row[hidden]:first-child + .row { margin-top: 2px; }
.row.user { align-items: flex-end; }
.row.bot, .row.agent { align-items: flex-start; }
.line { display: flex; align-items: flex-end; gap: 8px; width: 100%; min-width: 0; }
.row.user .line { justify-content: flex-end; }
.av {
  flex: none; width: 28px; height: 28px; border-radius: 50%; display: grid; place-items: center;
  background: var(--sb-accent-soft); color: var(--sb-accent-ink); font-size: 11px; font-weight: 700; letter-spacing: .02em;
}
.row.agent .av, .av.av-agent { background: #1f2937; color: #fff; }
.bubble {
  min-width: 0; max-width: 84%; padding: 9px 13px; border-radius: 18px;
  white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word;
  font-size: 14px; line-height: 1.5;
}
.row.bot .bubble, .row.agent .bubble { max-width: calc(100% - 36px); }
.row.bot .bubble, .row.greeting .bubble { background: var(--sb-bot-bg); color: var(--sb-text); border-bottom-left-radius: 6px; }
.row.agent .bubble { background: var(--sb-accent-soft); color: var(--sb-text); border-bottom-left-radius: 6px; box-shadow: inset 0 0 0 1px rgba(15,23,42,.06); }
.row.user .bubble { background: var(--sb-accent); color: var(--sb-on-accent); border-bottom-right-radius: 6px; }
.row.user[data-state="pending"] .bubble { opacity: .72; }
.row.user[data-state="failed"] .bubble { opacity: .55; }
.bubble a { color: inherit; text-decoration: underline; text-underline-offset: 2px; text-decoration-thickness: 1px; }
.row.bot .bubble a, .row.agent .bubble a { color: var(--sb-accent-ink); }
.bubble[data-sr]::before { content: attr(data-sr) " "; }
.st::after { content: attr(data-label); }
.row.user[data-state="failed"] .st::after { position: static !important; width: auto; height: auto; margin: 0; clip: auto; overflow: visible; }
time::before { content: attr(data-t); }
.retry::before { content: attr(data-label); }
.label { margin: 0 0 4px 36px; font-size: 12px; font-weight: 600; color: var(--sb-muted); display: flex; gap: 6px; align-items: center; }
.label::after { content: attr(data-author); }
.label::before { content: attr(data-tag); font-size: 10.5px; font-weight: 700; letter-spacing: .02em; padding: 1px 6px; border-radius: 999px; background: #1f2937; color: #fff; }
.meta { margin: 4px 4px 0; font-size: 11px; line-height: 1.3; color: var(--sb-faint); display: flex; gap: 5px; align-items: center; }
.row.bot .meta, .row.agent .meta { margin-left: 40px; }
.meta .st { display: inline-flex; align-items: center; gap: 3px; }
.row.user[data-state="sent"] .meta .st { color: var(--sb-accent-ink); }
.row.user[data-state="failed"] .meta { color: #dc2626; }
.retry {
  border: 0; background: none; padding: 0 2px; cursor: pointer; color: #dc2626; font-weight: 600; font-size: 11px;
  text-decoration: underline; text-underline-offset: 2px;
}
/* grouping of consecutive messages from the same side */
.row.bot + .row.bot, .row.agent + .row.agent, .row.user + .row.user,
.row.greeting + .row.bot { margin-top: 4px; }
.row.agent + .row.agent .label { display: none; }
.row.bot:has(+ .row.bot) .av, .row.greeting:has(+ .row.bot) .av, .row.agent:has(+ .row.agent) .av { visibility: hidden; }
.row.bot:has(+ .row.bot) > .meta, .row.agent:has(+ .row.agent) > .meta { display: none; }
.row.user:has(+ .row.user[data-state="sent"])[data-state="sent"] > .meta { display: none; }

.row.system { align-items: center; margin: 14px 0 2px; }
.row.system .line { justify-content: center; }
.row.system .bubble {
  max-width: 92%; padding: 4px 12px; background: transparent; color: var(--sb-muted);
  font-size: 12px; line-height: 1.45; text-align: center; border-radius: 8px;
}
.row.system.local .bubble { background: #fef2f2; color: #b42318; }
.row.system .meta { display: none; }

.chips { display: flex; flex-wrap: wrap; gap: 6px; margin: 8px 0 0 36px; }
.chip {
  border: 1px solid var(--sb-accent-ink); background: #fff; color: var(--sb-accent-ink);
  border-radius: 999px; padding: 6px 13px; font-size: 13px; line-height: 1.3; cursor: pointer; text-align: left;
  transition: background-color .15s ease, color .15s ease;
}
.chip:hover { background: var(--sb-accent); border-color: var(--sb-accent); color: var(--sb-on-accent); }

.typing { margin-top: 12px; }
.typing .bubble { display: inline-flex; gap: 4px; align-items: center; padding: 13px 14px; }
.typing .d { width: 7px; height: 7px; border-radius: 50%; background: #9aa2af; animation: sb-bounce 1.2s ease-in-out infinite; }
.typing .d:nth-child(2) { animation-delay: .15s; }
.typing .d:nth-child(3) { animation-delay: .3s; }

.pill {
  position: absolute; left: 50%; bottom: 10px; transform: translateX(-50%);
  display: inline-flex; align-items: center; gap: 6px; padding: 6px 12px 6px 10px; border: 0; border-radius: 999px;
  background: var(--sb-accent); color: var(--sb-on-accent); font-size: 12.5px; font-weight: 600; cursor: pointer;
  box-shadow: 0 4px 14px rgba(15, 23, 42, .2);
}

/* composer */
.suggest { padding: 6px 2px 8px; font-size: 13px; }
.suggest[hidden] { display: none; }
.suggest .s-head { color: #667085; margin-bottom: 2px; }
.suggest a { display: block; padding: 3px 0; color: var(--sb-accent, #1f6feb); text-decoration: none; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.suggest a:hover { text-decoration: underline; }
.composer { flex: none; padding: 10px 12px 8px; border-top: 1px solid var(--sb-line); background: #fff; }
.field {
  display: flex; align-items: flex-end; gap: 8px; padding: 5px 5px 5px 14px;
  background: #f5f6f8; border: 1px solid #e4e7ec; border-radius: 22px;
  transition: border-color .15s ease, box-shadow .15s ease, background-color .15s ease;
}
.field:focus-within { background: #fff; border-color: var(--sb-accent); box-shadow: 0 0 0 3px var(--sb-accent-ring); }
.input {
  flex: 1; min-width: 0; margin: 0; padding: 7px 0; border: 0; outline: 0; resize: none; background: transparent;
  font: inherit; font-size: 14px; line-height: 20px; color: var(--sb-text); height: 34px; max-height: 124px; overflow-y: auto;
}
.input::placeholder { color: #98a0ad; opacity: 1; }
.input:focus-visible { outline: none; }
.send {
  flex: none; width: 34px; height: 34px; border: 0; border-radius: 50%; padding: 0; cursor: pointer;
  display: grid; place-items: center; background: var(--sb-accent); color: var(--sb-on-accent);
  transition: background-color .15s ease, transform .15s ease, opacity .15s ease;
}
.send .ic { margin: 1px 2px 0 0; }
.attach {
  flex: none; width: 34px; height: 34px; border: 0; border-radius: 50%; padding: 0; cursor: pointer;
  display: grid; place-items: center; background: transparent; color: #6b7280; margin-left: -10px;
}
.attach:hover { color: var(--sb-accent); }
.file { display: inline-flex; align-items: center; gap: 6px; max-width: 100%; }
.file .fname { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.file .fsize { opacity: .7; font-size: 12px; flex: none; }
.send:hover:not(:disabled) { transform: scale(1.06); }
.send:disabled { background: #d9dde4; color: #fff; cursor: default; }
.foot { display: flex; justify-content: space-between; align-items: center; gap: 8px; padding: 6px 6px 0; font-size: 11px; color: var(--sb-faint); }
.foot .powered { display: inline-flex; align-items: center; gap: 4px; }
.counter { font-variant-numeric: tabular-nums; }
.counter.warn { color: #b45309; }
.counter.over { color: #dc2626; font-weight: 600; }

@keyframes sb-bounce { 0%, 60%, 100% { transform: translateY(0); opacity: .45; } 30% { transform: translateY(-4px); opacity: 1; } }
@keyframes sb-pulse { 0%, 100% { opacity: 1; } 50% { opacity: .35; } }
@keyframes sb-pop { from { transform: scale(.4); opacity: 0; } to { transform: scale(1); opacity: 1; } }
@keyframes sb-rise { from { transform: translateY(8px); opacity: 0; } to { transform: none; opacity: 1; } }
@keyframes sb-in { from { transform: translateY(6px); opacity: 0; } to { transform: none; opacity: 1; } }
.row.anim { animation: sb-in .22s cubic-bezier(.2,.8,.2,1); }

@media (max-width: 480px) {
  .panel {
    right: 0; bottom: 0; left: 0; top: 0; width: 100%; height: 100%; height: 100dvh;
    max-width: none; max-height: none; border-radius: 0; transform-origin: 50% 100%;
    padding-bottom: env(safe-area-inset-bottom, 0px);
  }
  .root.is-open .launcher, .root.is-open .preview { display: none; }
  .header { padding-top: calc(14px + env(safe-area-inset-top, 0px)); }
  .input { font-size: 16px; }  /* prevents iOS zoom on focus */
  .launcher { right: 16px; bottom: calc(16px + env(safe-area-inset-bottom, 0px)); }
  .preview { right: 16px; bottom: calc(88px + env(safe-area-inset-bottom, 0px)); }
}
@media (max-height: 640px) and (min-width: 481px) {
  .panel { height: calc(100vh - 112px); }
}
@media (prefers-reduced-motion: reduce) {
  *, *::before, *::after {
    animation-duration: .001ms !important; animation-iteration-count: 1 !important;
    transition-duration: .001ms !important; transition-delay: 0s !important; scroll-behavior: auto !important;
  }
  .typing .d { opacity: .7; }
}
@media (forced-colors: active) {
  .launcher, .send, .bubble, .chip, .panel { border: 1px solid CanvasText; }
}
`;

  // ------------------------------------------------------------------ state --
  const st = {
    open: false,
    ws: null,
    welcomed: false,
    everWelcomed: false,
    started: false,
    attempt: 0,
    reconnectTimer: null,
    pingTimer: null,
    bannerTimer: null,
    typingTimer: null,
    greetingTimer: null,
    conn: 'connecting',
    session: sGet(K_SESSION),
    lastSeen: null, // in memory: last server event rendered on this page (null after a reload)
    lastRead: sGet(K_LAST_READ),
    unread: 0,
    rendered: new Set(), // server event ids already in the list
    byClient: new Map(), // client_id -> user row element
  };

  // ------------------------------------------------------------------- DOM --
  let suggestBox, host, shadow, root, launcher, badge, panel, statusEl, statusText, banner, bannerText, scroller, list,
    greetingRow, typingRow, pill, input, sendBtn, counter, preview, fileInput;

  function build() {
    host = document.createElement('div');
    host.id = 'switchboard-widget';
    // Keep the host out of the page's layout and above page content, whatever the page's CSS says.
    const hostStyle = {
      all: 'initial', display: 'block', position: 'fixed', right: '0', bottom: '0',
      width: '0', height: '0', 'z-index': '2147483000', overflow: 'visible',
    };
    for (const k of Object.keys(hostStyle)) host.style.setProperty(k, hostStyle[k], 'important');
    shadow = host.attachShadow({ mode: 'open' });
    // Constructable stylesheet where supported (also works under strict style-src CSP).
    let adopted = false;
    try {
      if ('adoptedStyleSheets' in shadow && typeof CSSStyleSheet === 'function') {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(CSS_TEXT);
        shadow.adoptedStyleSheets = [sheet];
        adopted = true;
      }
    } catch (_) { adopted = false; }
    if (!adopted) shadow.appendChild(h('style', { text: CSS_TEXT }));

    root = h('div', { class: 'root', lang: LOCALE, 'data-conn': 'connecting' });

    badge = h('span', { class: 'badge', 'data-sb': 'badge', 'aria-hidden': 'true', hidden: true, text: '0' });
    launcher = h('button', {
      class: 'launcher', type: 'button', 'data-sb': 'launcher', 'aria-label': T.openChat,
      'aria-expanded': 'false', 'aria-controls': 'sb-panel', 'aria-haspopup': 'dialog',
      onclick: () => (st.open ? close() : open()),
      onpointerenter: () => ensureConnected(),
      onfocus: () => ensureConnected(),
    }, [icon('chat', 28, true), icon('down', 28), badge]);

    // header
    statusText = h('span', { class: 'st-text', text: T.connecting });
    statusEl = h('div', { class: 'status', 'data-sb': 'status', 'data-state': 'connecting', role: 'status', 'aria-live': 'polite' },
      [h('span', { class: 'dot', 'aria-hidden': 'true' }), statusText]);
    const header = h('div', { class: 'header' }, [
      h('div', { class: 'h-avatar', 'aria-hidden': 'true' }, [icon('headset', 22)]),
      h('div', { class: 'h-text' }, [h('h2', { class: 'h-title', id: 'sb-title', text: TITLE }), statusEl]),
      h('button', { class: 'iconbtn', type: 'button', 'data-sb': 'close', 'aria-label': T.closeChat, title: T.closeChat, onclick: () => close(true) }, [icon('close', 20)]),
    ]);

    bannerText = h('span', { text: '' });
    banner = h('div', { class: 'banner', 'data-sb': 'banner', role: 'status', hidden: true }, [icon('alert', 15), bannerText]);

    // messages
    greetingRow = h('div', { class: 'row greeting', 'data-sb': 'greeting', hidden: true }, [
      h('div', { class: 'line' }, [
        h('div', { class: 'av', 'aria-hidden': 'true' }, [icon('headset', 15)]),
        h('div', { class: 'bubble', 'data-sr': T.botSaid }, [T.greeting]),
      ]),
    ]);
    list = h('div', { class: 'list', 'data-sb': 'messages', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions', 'aria-label': T.conversation }, [greetingRow]);
    typingRow = h('div', { class: 'row bot typing', 'data-sb': 'typing', hidden: true, role: 'status', 'aria-label': T.typing }, [
      h('div', { class: 'line' }, [
        h('div', { class: 'av', 'aria-hidden': 'true' }, [icon('headset', 15)]),
        h('div', { class: 'bubble', 'aria-hidden': 'true' }, [h('span', { class: 'd' }), h('span', { class: 'd' }), h('span', { class: 'd' })]),
      ]),
    ]);
    scroller = h('div', { class: 'body', tabindex: '-1' }, [list, typingRow]);
    scroller.addEventListener('scroll', () => { if (isNearBottom()) pill.hidden = true; }, { passive: true });
    pill = h('button', { class: 'pill', type: 'button', hidden: true, onclick: () => scrollToBottom(true) }, [icon('arrowDown', 14), T.newMessages]);

    // composer
    input = h('textarea', {
      class: 'input', 'data-sb': 'input', rows: '1', placeholder: T.placeholder, 'aria-label': T.inputLabel,
      autocomplete: 'off', spellcheck: 'true', enterkeyhint: 'send',
    });
    input.addEventListener('input', onInput);
    input.addEventListener('keydown', onInputKey);
    sendBtn = h('button', { class: 'send', type: 'button', 'data-sb': 'send', 'aria-label': T.send, title: T.send, disabled: true, onclick: submitInput }, [icon('send', 17)]);
    fileInput = h('input', { type: 'file', hidden: true, 'data-sb': 'file-input', accept: FILE_TYPES.join(','), tabindex: '-1' });
    fileInput.addEventListener('change', () => {
      const f = fileInput.files && fileInput.files[0];
      fileInput.value = '';
      if (f) uploadFile(f);
    });
    const attachBtn = h('button', { class: 'attach', type: 'button', 'data-sb': 'attach', 'aria-label': T.attach, title: T.attach, onclick: () => fileInput.click() }, [icon('clip', 18)]);
    counter = h('span', { class: 'counter', 'data-sb': 'counter', 'aria-live': 'polite', hidden: true });
    suggestBox = h('div', { class: 'suggest', 'data-sb': 'suggestions', hidden: true, 'aria-live': 'polite' });
    const composer = h('div', { class: 'composer' }, [
      suggestBox,
      h('div', { class: 'field' }, [attachBtn, input, sendBtn, fileInput]),
      h('div', { class: 'foot' }, [h('span', { class: 'powered' }, [icon('shield', 12), T.powered]), counter]),
    ]);

    panel = h('div', {
      class: 'panel', id: 'sb-panel', 'data-sb': 'panel', role: 'dialog', 'aria-modal': 'false',
      'aria-labelledby': 'sb-title', 'aria-hidden': 'true', inert: true,
    }, [header, banner, h('div', { class: 'main' }, [scroller, pill]), composer]);

    preview = h('div', { class: 'preview', 'data-sb': 'preview', hidden: true, role: 'button', tabindex: '0', onclick: () => open(), onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } } });

    root.append(panel, preview, launcher);
    shadow.appendChild(root);
    shadow.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && st.open) {
        e.stopPropagation();
        close(true);
      }
    });
    document.body.appendChild(host);
    applyAccent(COLOR);
  }

  function applyAccent(color) {
    root.style.setProperty('--sb-accent', color);
    // Resolve the colour to rgb() to pick readable foreground / tint colours.
    const probe = h('span');
    probe.style.display = 'none';
    probe.style.color = color;
    root.appendChild(probe);
    const m = /rgba?\(\s*([\d.]+)[ ,]+([\d.]+)[ ,]+([\d.]+)/.exec(getComputedStyle(probe).color || '');
    probe.remove();
    if (!m) return;
    const rgb = [+m[1], +m[2], +m[3]];
    const lin = rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    const lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
    const light = lum > 0.45;
    const mix = (t, w) => 'rgb(' + rgb.map((v) => Math.round(v * t + w * (1 - t))).join(',') + ')';
    root.style.setProperty('--sb-on-accent', light ? '#111827' : '#ffffff');
    root.style.setProperty('--sb-accent-ink', lum > 0.25 ? mix(0.6, 0) : color);
    root.style.setProperty('--sb-accent-soft', mix(0.1, 255));
    root.style.setProperty('--sb-accent-ring', 'rgba(' + rgb.join(',') + ',.25)');
  }

  // ------------------------------------------------------------- rendering --
  function isNearBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }
  function scrollToBottom(smooth) {
    const top = scroller.scrollHeight;
    if (smooth && !REDUCED_MOTION && st.open && typeof scroller.scrollTo === 'function') scroller.scrollTo({ top, behavior: 'smooth' });
    else scroller.scrollTop = top;
    pill.hidden = true;
  }
  // Run `fn` (which adds content) keeping the view pinned to the bottom when it was there.
  function withScroll(fn, forceBottom) {
    const near = !st.open || isNearBottom();
    const r = fn();
    if (forceBottom || near) scrollToBottom(st.open);
    else pill.hidden = false;
    return r;
  }

  function kindLabel(kind) {
    return kind === 'user' ? T.youSaid : kind === 'agent' ? T.agentSaid : kind === 'bot' ? T.botSaid : '';
  }

  function buildRow(kind, text, date, o) {
    const row = h('div', { class: 'row ' + kind + (o.local ? ' local' : ''), 'data-sb': 'msg', 'data-kind': kind });
    if (o.id) row.setAttribute('data-id', o.id);
    if (o.local) row.setAttribute('data-local', 'true');
    if (!REDUCED_MOTION && o.animate) row.classList.add('anim');

    // Everything that is not the message itself (speaker for screen readers, agent
    // label, time, delivery state) is CSS generated content from data attributes,
    // so a message element's textContent is exactly the message text (plus any
    // quick-reply chip labels).
    const sr = kindLabel(kind);
    const bubble = h('div', { class: 'bubble', 'data-sr': sr ? (kind === 'agent' && o.author ? o.author + ' — ' : '') + sr : null });
    if (kind === 'bot' || kind === 'agent') appendLinkified(bubble, text);
    else bubble.appendChild(document.createTextNode(text));
    for (const a of o.attachments || []) {
      bubble.appendChild(h('span', { class: 'file', 'data-sb': 'file' }, [
        icon('clip', 13), h('span', { class: 'fname', text: String(a.name || 'file') }),
        a.size ? h('span', { class: 'fsize', text: fmtBytes(a.size) }) : null,
      ]));
    }

    if (kind === 'agent') {
      row.setAttribute('data-author', o.author || '');
      row.appendChild(h('div', { class: 'label', 'aria-hidden': 'true', 'data-tag': T.agent, 'data-author': o.author || '' }));
    }
    const line = h('div', { class: 'line' });
    if (kind === 'bot') line.appendChild(h('div', { class: 'av', 'aria-hidden': 'true' }, [icon('headset', 15)]));
    if (kind === 'agent') line.appendChild(h('div', { class: 'av', 'aria-hidden': 'true', text: initials(o.author) || T.agent.slice(0, 1) }));
    line.appendChild(bubble);
    row.appendChild(line);

    const meta = h('div', { class: 'meta' }, [
      h('time', { datetime: date.toISOString(), title: fmtFull.format(date), 'data-t': shortTime(date) }),
    ]);
    row.appendChild(meta);

    if (kind === 'user') {
      if (o.clientId) row.setAttribute('data-client-id', o.clientId);
      row.__sbText = text;
      setUserState(row, o.state || 'sent');
    }
    return row;
  }

  function setUserState(row, state) {
    row.setAttribute('data-state', state);
    const meta = row.querySelector('.meta');
    const old = meta.querySelector('.st');
    if (old) old.remove();
    const oldRetry = meta.querySelector('.retry');
    if (oldRetry) oldRetry.remove();
    if (state === 'pending') {
      meta.appendChild(h('span', { class: 'st', title: T.sending, 'data-label': T.sending }, [icon('clock', 11)]));
    } else if (state === 'sent') {
      meta.appendChild(h('span', { class: 'st', title: T.sent, 'data-label': T.sent }, [icon('check', 12)]));
    } else if (state === 'failed') {
      meta.appendChild(h('span', { class: 'st', 'data-label': T.failed }, [icon('alert', 12)]));
      if (!row.__sbFile) meta.appendChild(h('button', { class: 'retry', type: 'button', 'data-sb': 'retry', 'aria-label': T.retry, 'data-label': T.retry, onclick: () => retry(row) }));
    }
  }

  // Server events go before the first still-pending local message: anything the
  // server says before acknowledging a message logically precedes it.
  function firstPending(except) {
    const rows = list.querySelectorAll('.row.user[data-state="pending"]');
    for (const r of rows) if (r !== except) return r;
    return null;
  }
  function placeConfirmed(row) {
    const ref = firstPending(row);
    if (ref && (ref.compareDocumentPosition(row) & Node.DOCUMENT_POSITION_FOLLOWING)) list.insertBefore(row, ref);
  }

  function clearChips() {
    for (const c of list.querySelectorAll('.chips')) c.remove();
  }
  function addChips(row, buttons) {
    const wrap = h('div', { class: 'chips', 'data-sb': 'chips', role: 'group', 'aria-label': T.quickReplies });
    for (const b of buttons) {
      if (!b || typeof b !== 'object') continue;
      const label = typeof b.label === 'string' ? b.label : '';
      const payload = typeof b.payload === 'string' && b.payload ? b.payload : label;
      if (!label || !payload) continue;
      wrap.appendChild(h('button', {
        class: 'chip', type: 'button', 'data-sb': 'chip', 'data-payload': payload,
        onclick: () => { wrap.remove(); sendText(payload); focusInput(); },
      }, [label]));
    }
    if (wrap.childNodes.length) row.appendChild(wrap);
  }

  function showGreeting() {
    clearTimeout(st.greetingTimer);
    if (!greetingRow.hidden) return;
    withScroll(() => { greetingRow.hidden = false; });
  }

  function localNotice(text) {
    const row = buildRow('system', text, new Date(), { local: true, animate: true });
    withScroll(() => list.insertBefore(row, firstPending()), true);
    return row;
  }

  function showTyping() {
    clearTimeout(st.typingTimer);
    withScroll(() => { typingRow.hidden = false; });
    st.typingTimer = setTimeout(hideTyping, TYPING_MAX_MS);
  }
  function hideTyping() {
    clearTimeout(st.typingTimer);
    typingRow.hidden = true;
  }

  function setUnread(n) {
    st.unread = n;
    badge.hidden = n <= 0;
    badge.textContent = n > 9 ? '9+' : String(n);
    launcher.setAttribute('aria-label', st.open ? T.closeChat : n > 0 ? T.openChat + ' — ' + T.unread(n) : T.openChat);
    if (n <= 0) preview.hidden = true;
  }
  // lastRead: null = no baseline yet (never opened here: history is not "unread"),
  // '' = opened before any server event, else the id of the last event seen open.
  function markRead() {
    const next = st.lastSeen || '';
    if (st.lastRead == null || (next && (!st.lastRead || cmpId(next, st.lastRead) > 0))) {
      st.lastRead = next;
      sSet(K_LAST_READ, next);
    }
    if (st.unread) setUnread(0);
  }
  function isUnread(id) {
    return !!id && st.lastRead != null && (st.lastRead === '' || cmpId(id, st.lastRead) > 0);
  }
  function showPreview(kind, text, author) {
    preview.textContent = '';
    const from = kind === 'agent' ? (author ? T.agent + ' · ' + author : T.agent) : TITLE;
    const av = h('div', { class: 'av', 'aria-hidden': 'true' }, kind === 'agent' ? [initials(author) || T.agent.slice(0, 1)] : [icon('headset', 15)]);
    if (kind === 'agent') av.classList.add('av-agent');
    preview.append(
      av,
      h('div', { class: 'pv-body' }, [h('div', { class: 'pv-from', text: from }), h('div', { class: 'pv-text', text: text })]),
      h('button', {
        class: 'pv-x', type: 'button', 'aria-label': T.dismiss, title: T.dismiss,
        onclick: (e) => { e.stopPropagation(); preview.hidden = true; },
      }, [icon('close', 14)]),
    );
    preview.setAttribute('aria-label', from + ': ' + text);
    preview.hidden = false;
  }

  // --------------------------------------------------------------- protocol --
  function onEvent(ev) {
    const id = ev.id == null ? null : String(ev.id);
    if (id) {
      if (st.rendered.has(id)) return; // dedupe
      st.rendered.add(id);
      if (!st.lastSeen || cmpId(id, st.lastSeen) > 0) {
        st.lastSeen = id;
        sSet(K_LAST_SEEN, id);
      }
    }
    clearTimeout(st.greetingTimer);
    const kind = ['user', 'bot', 'agent', 'system'].indexOf(ev.kind) >= 0 ? ev.kind : 'bot';
    const text = typeof ev.text === 'string' ? ev.text : '';
    const author = typeof ev.author === 'string' && ev.author.trim() ? ev.author.trim() : null;
    const cid = ev.client_id == null ? null : String(ev.client_id);

    if (kind === 'user') {
      const mine = cid ? st.byClient.get(cid) : null;
      if (mine) { // our own message coming back: confirm it, never render twice
        if (id) mine.setAttribute('data-id', id);
        // The server's copy is redacted: show that, so a pasted secret leaves the page too.
        if (text && text !== mine.__sbText) replaceUserText(mine, text);
        confirmRow(mine, cid);
        return;
      }
      clearChips();
    }
    if (kind === 'bot' || kind === 'agent') hideTyping();

    const attachments = Array.isArray(ev.attachments) ? ev.attachments.filter((a) => a && typeof a === 'object') : [];
    const row = buildRow(kind, text, parseTs(ev.ts), { id, author, clientId: cid, state: 'sent', animate: st.open, attachments });
    if (kind === 'user' && cid) st.byClient.set(cid, row);
    const ref = firstPending();
    withScroll(() => {
      list.insertBefore(row, ref);
      if (!ref && Array.isArray(ev.buttons) && ev.buttons.length) addChips(row, ev.buttons);
    });

    if (kind === 'bot' || kind === 'agent') {
      if (st.open && document.visibilityState !== 'hidden') markRead();
      else if (isUnread(id)) {
        setUnread(st.unread + 1);
        if (!st.open) showPreview(kind, text, author);
      }
    } else if (kind === 'user' && st.open) {
      markRead();
    }
  }

  function replaceUserText(row, text) {
    const bubble = row.querySelector('.bubble');
    const first = bubble && bubble.firstChild;
    if (first && first.nodeType === 3) first.nodeValue = text; // the typed text; files follow it
    row.__sbText = text;
  }

  function confirmRow(row, cid) {
    if (row.getAttribute('data-state') !== 'sent') setUserState(row, 'sent');
    outboxRemove(cid);
    placeConfirmed(row);
  }

  function onAck(msg) {
    const cid = msg.client_id == null ? null : String(msg.client_id);
    const row = cid && st.byClient.get(cid);
    if (row) confirmRow(row, cid);
    else if (cid) outboxRemove(cid);
  }

  function onError(msg) {
    const code = typeof msg.code === 'string' ? msg.code : 'invalid';
    const text = (typeof msg.message === 'string' && msg.message.trim()) || T.errors[code] || T.errors.invalid;
    const cid = msg.client_id == null ? null : String(msg.client_id);
    hideTyping();
    const row = cid && st.byClient.get(cid);
    if (row && row.getAttribute('data-state') !== 'sent') {
      setUserState(row, 'failed');
      outboxPatch(cid, { failed: true });
      // keep the failed bubble where the conversation is now
      const ref = firstPending(row);
      if (ref && (ref.compareDocumentPosition(row) & Node.DOCUMENT_POSITION_FOLLOWING)) list.insertBefore(row, ref);
    }
    const notice = localNotice(text);
    notice.setAttribute('data-code', code);
  }

  function onWelcome(msg) {
    const sid = typeof msg.session === 'string' && msg.session ? msg.session : null;
    if (st.session && sid && sid !== st.session && st.rendered.size) resetConversation();
    st.session = sid;
    sSet(K_SESSION, sid);
    st.welcomed = true;
    st.everWelcomed = true;
    st.attempt = 0;
    setConn('online');
    startPing();
    flushOutbox();
    if (!st.rendered.size) {
      clearTimeout(st.greetingTimer);
      st.greetingTimer = setTimeout(() => { if (!st.rendered.size) showGreeting(); }, 700);
    }
  }

  function resetConversation() {
    for (const r of Array.from(list.querySelectorAll('.row[data-sb="msg"]'))) {
      const state = r.getAttribute('data-state');
      if (r.classList.contains('user') && (state === 'pending' || state === 'failed')) continue;
      r.remove();
    }
    st.rendered.clear();
    st.lastSeen = null;
    st.lastRead = st.lastRead == null ? null : '';
    sSet(K_LAST_SEEN, null);
    sSet(K_LAST_READ, st.lastRead);
    for (const [cid, r] of Array.from(st.byClient)) if (!r.isConnected) st.byClient.delete(cid);
    showGreeting();
  }

  function onFrame(data) {
    let msg;
    try { msg = JSON.parse(data); } catch (_) { return; }
    if (!msg || typeof msg !== 'object') return;
    switch (msg.type) {
      case 'welcome': onWelcome(msg); break;
      case 'event': onEvent(msg); break;
      case 'ack': onAck(msg); break;
      case 'error': onError(msg); break;
      case 'ping': sendFrame({ type: 'pong' }); break;
      default: break; // unknown frames (incl. pong) are ignored
    }
  }

  function sendFrame(obj) {
    const ws = st.ws;
    if (!ws || ws.readyState !== 1) return false;
    try { ws.send(JSON.stringify(obj)); return true; } catch (_) { return false; }
  }

  function transmit(cid, text) {
    if (st.welcomed && sendFrame({ type: 'message', client_id: cid, text })) {
      showTyping();
      return true;
    }
    return false;
  }

  function flushOutbox() {
    for (const item of outboxLoad()) {
      if (item.failed) continue;
      if (!st.byClient.has(item.client_id)) renderOutboxItem(item); // e.g. queued by another tab
      const row = st.byClient.get(item.client_id);
      if (row && row.getAttribute('data-state') === 'sent') { outboxRemove(item.client_id); continue; }
      transmit(item.client_id, item.text);
    }
  }

  function renderOutboxItem(item) {
    const row = buildRow('user', item.text, parseTs(item.ts), { clientId: item.client_id, state: item.failed ? 'failed' : 'pending' });
    st.byClient.set(item.client_id, row);
    list.appendChild(row);
    return row;
  }

  // ------------------------------------------------------------- connection --
  function setConn(state) {
    const prev = st.conn;
    st.conn = state;
    root.setAttribute('data-conn', state);
    statusEl.setAttribute('data-state', state);
    statusText.textContent = state === 'online' ? T.online
      : state === 'offline' ? T.offline
        : (st.everWelcomed ? T.reconnecting : T.connecting);
    if (state === 'online') {
      clearTimeout(st.bannerTimer);
      st.bannerTimer = null;
      banner.hidden = true;
    } else if (state === 'offline') {
      bannerText.textContent = T.bannerOffline;
      banner.hidden = false;
    } else if (prev === 'offline' && !banner.hidden) {
      bannerText.textContent = T.bannerReconnecting;
    } else if (!st.bannerTimer && banner.hidden) {
      // only bother the user if reconnecting takes a moment (retries keep this timer)
      st.bannerTimer = setTimeout(() => {
        st.bannerTimer = null;
        if (st.conn !== 'online') {
          bannerText.textContent = navigator.onLine === false ? T.bannerOffline
            : st.everWelcomed ? T.bannerReconnecting : T.bannerConnecting;
          banner.hidden = false;
        }
      }, st.everWelcomed ? 2500 : 5000);
    }
  }

  function connect() {
    clearTimeout(st.reconnectTimer);
    st.reconnectTimer = null;
    if (st.ws && (st.ws.readyState === 0 || st.ws.readyState === 1)) return;
    st.started = true;
    setConn(navigator.onLine === false ? 'offline' : 'connecting');
    let ws;
    try {
      ws = new WebSocket(WS_URL);
    } catch (_) {
      scheduleReconnect();
      return;
    }
    st.ws = ws;
    st.welcomed = false;
    ws.onopen = () => {
      if (st.ws !== ws) return;
      sendFrame({ type: 'hello', session: st.session || null, last_seen: st.lastSeen || null, lang: LANG });
    };
    ws.onmessage = (e) => { if (st.ws === ws && typeof e.data === 'string') onFrame(e.data); };
    ws.onclose = () => {
      if (st.ws !== ws) return;
      st.ws = null;
      st.welcomed = false;
      stopPing();
      scheduleReconnect();
    };
    ws.onerror = () => { /* a close event follows */ };
    // Don't let the first attempt hang forever on a black-holed network.
    setTimeout(() => { if (st.ws === ws && ws.readyState === 0) { try { ws.close(); } catch (_) { /* ignore */ } } }, 10000);
    // If nothing arrives soon (slow or no server), still greet a first-time visitor.
    if (!st.rendered.size && greetingRow.hidden) {
      clearTimeout(st.greetingTimer);
      st.greetingTimer = setTimeout(() => { if (!st.rendered.size) showGreeting(); }, 3000);
    }
  }

  function scheduleReconnect() {
    if (st.reconnectTimer) return;
    const base = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, st.attempt));
    const delay = Math.max(BACKOFF_MIN, Math.round(base * (0.5 + Math.random() * 0.5)));
    st.attempt = Math.min(st.attempt + 1, 16);
    setConn(navigator.onLine === false ? 'offline' : 'connecting');
    st.reconnectTimer = setTimeout(() => { st.reconnectTimer = null; connect(); }, delay);
  }

  function reconnectNow() {
    if (!st.started) return;
    if (st.ws && (st.ws.readyState === 0 || st.ws.readyState === 1)) return;
    connect();
  }

  function ensureConnected() {
    if (!st.started || (!st.ws && !st.reconnectTimer)) connect();
  }

  function startPing() {
    stopPing();
    st.pingTimer = setInterval(() => sendFrame({ type: 'ping' }), PING_MS);
  }
  function stopPing() {
    clearInterval(st.pingTimer);
    st.pingTimer = null;
  }

  // ------------------------------------------------------------------ input --
  function onInput() {
    autoGrow();
    updateComposer();
    suggestSoon();
  }

  // Help-centre articles that match what the user is typing (GET /help/api/search), a moment
  // after they pause; a click opens the article in a new tab. The server may not serve a help
  // centre: then nothing is shown.
  let suggestTimer = 0;
  let suggestSeq = 0;
  function suggestSoon() {
    clearTimeout(suggestTimer);
    const q = input.value.trim();
    const cjk = /[\u3400-\u9fff]/.test(q);
    if (cpLen(q) < (cjk ? 2 : 4)) { hideSuggestions(); return; }
    suggestTimer = setTimeout(() => fetchSuggestions(q), 300);
  }
  function hideSuggestions() {
    suggestSeq += 1;
    if (suggestBox) { suggestBox.hidden = true; suggestBox.textContent = ''; }
  }
  function fetchSuggestions(q) {
    const seq = ++suggestSeq;
    const url = ORIGIN + '/help/api/search?' + new URLSearchParams({ q: q.slice(0, 200), lang: LANG, limit: '3' }).toString();
    fetch(url, { mode: 'cors', credentials: 'omit' })
      .then((res) => (res.ok ? res.json() : null))
      .then((body) => {
        if (seq !== suggestSeq || !body || !Array.isArray(body.articles)) return;
        suggestBox.textContent = '';
        if (!body.articles.length) { suggestBox.hidden = true; return; }
        suggestBox.appendChild(h('div', { class: 's-head', text: T.suggested }));
        body.articles.forEach((a) => {
          suggestBox.appendChild(h('a', { href: ORIGIN + a.url, target: '_blank', rel: 'noopener noreferrer', 'data-sb': 'suggestion', 'data-article': String(a.id), text: String(a.title) }));
        });
        suggestBox.hidden = false;
      })
      .catch(() => { /* no help centre here: no suggestions */ });
  }
  function autoGrow() {
    const near = isNearBottom();
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight, 124) + 'px';
    if (near) scroller.scrollTop = scroller.scrollHeight; // keep the latest message in view
  }
  function updateComposer() {
    const n = cpLen(input.value);
    const empty = !input.value.trim();
    sendBtn.disabled = empty || n > MAX_LEN;
    if (n >= COUNTER_FROM) {
      counter.hidden = false;
      counter.textContent = n.toLocaleString(LOCALE) + ' / ' + MAX_LEN.toLocaleString(LOCALE);
      counter.className = 'counter ' + (n > MAX_LEN ? 'over' : 'warn');
    } else {
      counter.hidden = true;
    }
  }
  function onInputKey(e) {
    if (e.key !== 'Enter' || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.isComposing || e.keyCode === 229) return; // IME (pinyin) candidate selection
    e.preventDefault();
    submitInput();
  }
  function submitInput() {
    const value = input.value;
    if (!value.trim()) return;
    if (cpLen(value) > MAX_LEN) {
      localNotice(T.tooLong);
      return;
    }
    if (sendText(value)) {
      hideSuggestions();
      input.value = '';
      autoGrow();
      updateComposer();
    }
    focusInput();
  }
  function focusInput() {
    if (st.open) {
      try { input.focus({ preventScroll: true }); } catch (_) { input.focus(); }
    }
  }

  function fmtBytes(n) {
    return n >= 1048576 ? (n / 1048576).toFixed(1) + ' MB' : Math.max(1, Math.round(n / 1024)) + ' KB';
  }

  /** A file goes over HTTP (too big for a chat frame); it comes back in the mailbox like a typed
   *  line, which confirms the bubble. The server checks size and type again. */
  function uploadFile(file) {
    const type = String(file.type || '').toLowerCase();
    if (FILE_TYPES.indexOf(type) < 0) { localNotice(T.fileType); return; }
    if (file.size > MAX_FILE_BYTES) { localNotice(T.fileTooLarge.replace('{max}', String(MAX_FILE_BYTES / 1048576))); return; }
    if (!st.session) { localNotice(T.fileNotReady); return; }
    const cid = uuid();
    clearChips();
    const row = buildRow('user', '', new Date(), { clientId: cid, state: 'pending', animate: true, attachments: [{ name: file.name, size: file.size }] });
    row.__sbFile = true;
    st.byClient.set(cid, row);
    withScroll(() => list.appendChild(row), true);
    markRead();
    // The session is a secret: it travels in a header, never in the URL (which proxies log).
    const q = new URLSearchParams({ client_id: cid, name: file.name || 'file', lang: LANG });
    fetch(ORIGIN + '/widget/upload?' + q.toString(), { method: 'POST', body: file, headers: { 'content-type': type, 'x-widget-session': st.session }, mode: 'cors', credentials: 'omit' })
      .then((res) => res.json().catch(() => ({})).then((body) => {
        if (res.ok) {
          if (row.getAttribute('data-state') !== 'sent') setUserState(row, 'sent');
          return;
        }
        setUserState(row, 'failed');
        localNotice((body && typeof body.message === 'string' && body.message) || T.errors.invalid);
      }))
      .catch(() => {
        setUserState(row, 'failed');
        localNotice(T.errors.unavailable || T.errors.invalid);
      });
  }

  function sendText(raw) {
    const text = String(raw == null ? '' : raw).replace(/\r\n?/g, '\n').trim();
    if (!text || cpLen(text) > MAX_LEN) return null;
    const cid = uuid();
    const item = { client_id: cid, text, ts: new Date().toISOString() };
    outboxPut(item);
    clearChips();
    const row = buildRow('user', text, new Date(item.ts), { clientId: cid, state: 'pending', animate: true });
    st.byClient.set(cid, row);
    withScroll(() => list.appendChild(row), true);
    markRead();
    ensureConnected();
    transmit(cid, text);
    return cid;
  }

  function retry(row) {
    const oldCid = row.getAttribute('data-client-id');
    const text = row.__sbText || '';
    if (!text) return;
    // The failed message never reached the queue: send it again under a fresh id.
    const cid = uuid();
    if (oldCid) { st.byClient.delete(oldCid); outboxRemove(oldCid); }
    row.setAttribute('data-client-id', cid);
    st.byClient.set(cid, row);
    outboxPut({ client_id: cid, text, ts: new Date().toISOString() });
    setUserState(row, 'pending');
    withScroll(() => list.appendChild(row), true);
    ensureConnected();
    transmit(cid, text);
    focusInput();
  }

  // --------------------------------------------------------------- open/close --
  function open(opts) {
    if (!root) return;
    ensureConnected();
    if (st.open) { if (!(opts && opts.silent)) focusInput(); return; }
    st.open = true;
    root.classList.add('is-open');
    panel.classList.add('is-open');
    panel.removeAttribute('inert');
    panel.setAttribute('aria-hidden', 'false');
    launcher.setAttribute('aria-expanded', 'true');
    launcher.setAttribute('aria-label', T.closeChat);
    preview.hidden = true;
    markRead();
    scrollToBottom(false);
    const coarse = window.matchMedia && window.matchMedia('(pointer: coarse)').matches;
    if (!(opts && opts.silent) && !coarse) focusInput();
  }

  function close(returnFocus) {
    if (!root || !st.open) return;
    const hadFocus = shadow.activeElement && panel.contains(shadow.activeElement);
    st.open = false;
    root.classList.remove('is-open');
    panel.classList.remove('is-open');
    panel.setAttribute('aria-hidden', 'true');
    panel.setAttribute('inert', '');
    launcher.setAttribute('aria-expanded', 'false');
    setUnread(st.unread);
    if (returnFocus || hadFocus) launcher.focus();
  }

  // ------------------------------------------------------------------- init --
  function init() {
    if (document.getElementById('switchboard-widget')) return;
    build();

    // Messages that were never acknowledged (e.g. page closed while offline).
    const pending = outboxLoad();
    for (const item of pending) renderOutboxItem(item);

    // Esc also closes when nothing in particular has focus (e.g. opened with data-open).
    document.addEventListener('keydown', (e) => {
      const a = document.activeElement;
      if (e.key === 'Escape' && st.open && (!a || a === document.body || a === document.documentElement)) close(true);
    });
    window.addEventListener('online', () => reconnectNow());
    window.addEventListener('offline', () => {
      setConn('offline');
      // Browsers keep dead sockets "open" for a long time; drop it and retry on 'online'.
      if (st.ws) { try { st.ws.close(); } catch (_) { /* ignore */ } }
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') {
        reconnectNow();
        if (st.open) markRead();
      }
    });

    // Connect right away for returning visitors (history, unread replies) or when
    // there is something to send; first-time visitors connect on first interaction.
    if (!st.session) showGreeting();
    if (st.session || pending.length || START_OPEN) connect();
    if (START_OPEN) open({ silent: true });
  }

  window.Switchboard = {
    __switchboard: true,
    open: () => open(),
    close: () => close(false),
    send: (text) => {
      if (!root) return null;
      open({ silent: true });
      return sendText(text);
    },
  };

  if (document.body) init();
  else document.addEventListener('DOMContentLoaded', init, { once: true });
})();
