/**
 * The status page (php-fpm's status page, live): one self-contained HTML document, no external assets. On load
 * it fetches `history.json` once (the gateway's own last five minutes, one sample per second), then polls
 * `status.json` every second, adding each new sample, and draws pools, workers and the traffic chart.
 *
 * Hooks for tests and scripts: `#pools [data-pool="NAME"]` per pool (with `data-ready`, `data-failing`; inside,
 * `.pool-state`, `.queue`, `.restarts`), worker rows `tr[data-pid]` (with `data-state`), `#version`, `#uptime`,
 * `#draining`, `#rps`, `#p50`, `#p99`, `#chart` (canvas; `data-samples` = samples drawn, `data-oldest` = the
 * oldest one's time), the last minute's status classes `#c2xx #c3xx #c4xx #c5xx #c429`, `#conn-http1`,
 * `#conn-http2`, `#rss` (MB), `#cpu` (%), `#cache-hit` (hit ratio over the last minute), `#store` (the rate-limit
 * store's state, `data-state`), `#updated` (time of the last successful refresh; `data-now` = the server's
 * clock), `#error`.
 */
import { createHash } from 'node:crypto';

const STYLE = `
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --muted: #6e7781; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; padding: 16px 24px; }
header { display: flex; flex-wrap: wrap; gap: 8px 24px; align-items: baseline; margin-bottom: 12px; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 16px; margin: 0; display: inline; }
.stat b { font-variant-numeric: tabular-nums; }
.muted { color: var(--muted); }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: var(--muted); }
.badge.ok { background: var(--ok); } .badge.warn { background: var(--warn); } .badge.bad { background: var(--bad); }
#error { color: var(--bad); font-weight: 600; }
#error:empty { display: none; }
#chart { width: 100%; height: 180px; border: 1px solid var(--line); border-radius: 6px; display: block; margin-bottom: 8px; }
.legend span { margin-right: 16px; } .legend i { display: inline-block; width: 18px; height: 3px; vertical-align: middle; margin-right: 4px; }
.legend i.rps { background: #0969da; } .legend i.p99 { background: #bf3989; } .legend i.e5 { background: #cf222e; } .legend i.r429 { background: #bc4c00; }
.row { display: flex; flex-wrap: wrap; gap: 4px 24px; margin: 0 0 10px; }
.pool { border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; margin: 12px 0; }
.pool .meta { display: flex; flex-wrap: wrap; gap: 4px 20px; margin: 6px 0; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 3px 10px 3px 0; border-bottom: 1px solid var(--line); white-space: nowrap; }
td.script { white-space: normal; word-break: break-all; max-width: 40em; }
tr[data-state="busy"] td.state { color: var(--warn); font-weight: 600; }
tr[data-state="idle"] td.state { color: var(--ok); }
`;

const SCRIPT = `
'use strict';
const POLL_MS = 1000, FETCH_TIMEOUT_MS = 3000, HISTORY_MS = 300000, MINUTE_MS = 60000;
const RPS_COLOR = '#0969da', P99_COLOR = '#bf3989', E5_COLOR = '#cf222e', R429_COLOR = '#bc4c00';
const $ = (id) => document.getElementById(id);

// The token comes in the address (a browser cannot send a header when navigating); it is then kept for this
// tab only and taken out of the address bar and history, and sent as a header with every poll.
let token = '';
try {
  const params = new URLSearchParams(location.search);
  token = params.get('token') || sessionStorage.getItem('phpgate-token') || '';
  if (params.has('token')) {
    sessionStorage.setItem('phpgate-token', token);
    params.delete('token');
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + (rest ? '?' + rest : '') + location.hash);
  }
} catch (e) {
  console.warn('token storage unavailable', e); // private mode: the token still works for this page's life
}
const headers = token ? { Authorization: 'Bearer ' + token } : {};

const samples = []; // the gateway's one-second samples (history.json, then status.json's), by the server's clock

function el(tag, attrs, text) {
  const e = document.createElement(tag);
  if (attrs) for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text; // never innerHTML: script labels are request URIs
  return e;
}

function duration(s) {
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
  return (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + (d || h || m ? m + 'm ' : '') + (s % 60) + 's';
}

function ms(v) {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function renderPool(p, now) {
  const sec = el('section', { class: 'pool', 'data-pool': p.name, 'data-ready': String(p.ready), 'data-failing': String(p.failing) });
  const head = el('div');
  head.append(el('h2', null, p.name), ' ');
  const badge = p.failing ? ['failing', 'bad'] : p.ready ? ['ready', 'ok'] : ['starting', 'warn'];
  head.append(el('span', { class: 'badge ' + badge[1] + ' pool-state' }, badge[0]));
  if (p.masterPid) head.append(' ', el('span', { class: 'muted' }, 'master ' + p.masterPid));
  sec.append(head);

  const meta = el('div', { class: 'meta' });
  meta.append(el('span', { class: 'queue' }, 'queue ' + p.queued + ' / ' + p.queueLimit));
  meta.append(el('span', { class: 'counts' }, p.idle + ' idle · ' + p.busy + ' busy · ' + p.starting + ' starting'));
  const restarts = el('span', { class: 'restarts' }, 'restarts: ');
  const reasons = Object.keys(p.restarts).filter((r) => p.restarts[r] > 0);
  if (reasons.length === 0) restarts.append('none');
  reasons.forEach((r, i) => {
    if (i > 0) restarts.append(' · ');
    restarts.append(el('span', { 'data-reason': r }, r + ' ' + p.restarts[r]));
  });
  meta.append(restarts);
  sec.append(meta);

  const table = el('table');
  const hr = el('tr');
  for (const h of ['pid', 'state', 'script', 'elapsed', 'private MB', 'requests', 'all-time']) hr.append(el('th', null, h));
  const thead = el('thead');
  thead.append(hr);
  table.append(thead);
  const body = el('tbody');
  p.workers.forEach((w, slot) => {
    const tr = el('tr', { 'data-pid': String(w.pid), 'data-state': w.state, 'data-slot': String(slot) });
    tr.append(el('td', { class: 'pid' }, w.pid > 0 ? String(w.pid) : '—'));
    tr.append(el('td', { class: 'state' }, w.state));
    tr.append(el('td', { class: 'script' }, w.current ? w.current.label : ''));
    tr.append(el('td', { class: 'elapsed' }, w.current ? ((now - w.current.startedAt) / 1000).toFixed(1) + ' s' : ''));
    tr.append(el('td', { class: 'mem' }, w.privateBytes > 0 ? (w.privateBytes / 1048576).toFixed(1) : '—'));
    tr.append(el('td', { class: 'requests' }, String(w.requests)));
    tr.append(el('td', { class: 'requests-total' }, String(w.requestsTotal)));
    body.append(tr);
  });
  table.append(body);
  sec.append(table);
  return sec;
}

function render(s) {
  $('version').textContent = s.version;
  $('uptime').textContent = duration((s.now - s.startedAt) / 1000);
  const dr = $('draining');
  dr.textContent = s.draining ? 'draining' : 'serving';
  dr.className = 'badge ' + (s.draining ? 'bad' : 'ok');
  $('rps').textContent = s.recent.rps.toFixed(1);
  $('p50').textContent = ms(s.recent.p50Ms);
  $('p99').textContent = ms(s.recent.p99Ms);
  $('pools').replaceChildren(...s.pools.map((p) => renderPool(p, s.now)));
  if (s.pools.length === 0) $('pools').append(el('p', { class: 'muted' }, 'No PHP pools.'));

  if (s.sample && (samples.length === 0 || s.sample.t > samples[samples.length - 1].t)) samples.push(s.sample);
  while (samples.length > 0 && samples[0].t < s.now - HISTORY_MS) samples.shift();
  drawChart(s.now);
  renderTotals(s);

  const u = $('updated');
  u.textContent = new Date(s.now).toISOString().replace('T', ' ').replace('Z', ' UTC');
  u.dataset.now = String(s.now);
}

function renderTotals(s) {
  const sum = { s2xx: 0, s3xx: 0, s4xx: 0, s5xx: 0, s429: 0, cacheHit: 0, cacheAll: 0 };
  for (const p of samples) {
    if (p.t <= s.now - MINUTE_MS) continue;
    for (const k of ['s2xx', 's3xx', 's4xx', 's5xx', 's429']) sum[k] += p[k];
    sum.cacheHit += p.cacheHit + p.cacheStale;
    sum.cacheAll += p.cacheHit + p.cacheStale + p.cacheMiss + p.cacheBypass;
  }
  $('c2xx').textContent = sum.s2xx; $('c3xx').textContent = sum.s3xx; $('c4xx').textContent = sum.s4xx;
  $('c5xx').textContent = sum.s5xx; $('c429').textContent = sum.s429;
  $('conn-http1').textContent = s.connections.http1;
  $('conn-http2').textContent = s.connections.http2;
  const last = samples[samples.length - 1];
  $('rss').textContent = last ? (last.rssBytes / 1048576).toFixed(1) : '…';
  $('cpu').textContent = last ? last.cpuPct.toFixed(1) : '…';
  $('cache-hit').textContent = sum.cacheAll > 0 ? ((100 * sum.cacheHit) / sum.cacheAll).toFixed(0) + ' %' : '—';
  const st = $('store');
  const state = s.rateLimit ? s.rateLimit.state : 'none';
  st.textContent = s.rateLimit ? s.rateLimit.store + ': ' + state : 'no rate limits';
  st.dataset.state = state;
  st.className = 'badge ' + (state === 'connected' || state === 'local' ? 'ok' : state === 'degraded' ? 'warn' : state === 'fallback' ? 'bad' : '');
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function drawChart(now) {
  const c = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth, h = c.clientHeight;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
    c.width = Math.round(w * dpr);
    c.height = Math.round(h * dpr);
  }
  const g = c.getContext('2d');
  if (!g) return;
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const L = 48, R = 56, T = 10, B = 20, pw = w - L - R, ph = h - T - B;
  c.dataset.samples = String(samples.length);
  c.dataset.oldest = samples.length ? String(samples[0].t) : '';
  const maxRps = niceMax(Math.max(0, ...samples.map((p) => p.requests)));
  const maxP99 = niceMax(Math.max(0, ...samples.map((p) => p.p99Ms)));
  const x = (t) => L + pw * (1 - (now - t) / HISTORY_MS);
  g.font = '11px system-ui, sans-serif';
  g.strokeStyle = 'rgba(128,128,128,0.3)';
  g.fillStyle = 'rgba(128,128,128,0.9)';
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const y = T + ph * (i / 4);
    g.beginPath(); g.moveTo(L, y); g.lineTo(L + pw, y); g.stroke();
    g.textAlign = 'right'; g.fillText(String(+(maxRps * (1 - i / 4)).toPrecision(3)), L - 6, y + 4);
    g.textAlign = 'left'; g.fillText(ms(maxP99 * (1 - i / 4)) + ' ms', L + pw + 6, y + 4);
  }
  g.textAlign = 'center';
  for (let s = 0; s <= 300; s += 60) g.fillText(s === 0 ? 'now' : '-' + s / 60 + 'm', L + pw * (1 - s / 300), h - 4);
  const line = (key, max, color) => {
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath();
    samples.forEach((p, i) => {
      const px = x(p.t), py = T + ph * (1 - p[key] / max);
      if (i === 0) g.moveTo(px, py); else g.lineTo(px, py);
    });
    g.stroke();
  };
  line('requests', maxRps, RPS_COLOR);
  line('s5xx', maxRps, E5_COLOR);
  line('s429', maxRps, R429_COLOR);
  line('p99Ms', maxP99, P99_COLOR);
}

// The last minutes as the gateway recorded them: the chart is full on the first load, not after minutes of polling.
async function loadHistory() {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await fetch('history.json', { headers, cache: 'no-store', signal: ctl.signal });
    if (res.ok) samples.push(...(await res.json()).samples);
  } catch (e) {
    console.warn('history.json unavailable; the chart starts now', e);
  } finally {
    clearTimeout(timer);
  }
}

async function poll() {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await fetch('status.json', { headers, cache: 'no-store', signal: ctl.signal });
    if (res.status === 401) throw new Error('unauthorized: open this page with ?token=<admin.token>');
    if (!res.ok) throw new Error('status.json answered ' + res.status);
    render(await res.json());
    $('error').textContent = '';
  } catch (e) {
    $('error').textContent = e && e.name === 'AbortError' ? 'status.json timed out' : String(e && e.message || e);
  } finally {
    clearTimeout(timer);
    setTimeout(poll, POLL_MS);
  }
}
loadHistory().then(poll);
`;

export const DASHBOARD_HTML: string = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>phpgate status</title>
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>phpgate</h1>
  <span class="stat">version <b id="version">…</b></span>
  <span class="stat">up <b id="uptime">…</b></span>
  <span id="draining" class="badge">…</span>
  <span class="stat"><b id="rps">…</b> req/s</span>
  <span class="stat">p50 <b id="p50">…</b> ms</span>
  <span class="stat">p99 <b id="p99">…</b> ms</span>
  <span class="stat muted">updated <span id="updated">never</span></span>
  <span id="error" role="alert"></span>
</header>
<div class="row">
  <span class="stat">last minute: 2xx <b id="c2xx">…</b> · 3xx <b id="c3xx">…</b> · 4xx <b id="c4xx">…</b> · 5xx <b id="c5xx">…</b> · 429 <b id="c429">…</b></span>
  <span class="stat">connections: HTTP/1.1 <b id="conn-http1">…</b> · HTTP/2 <b id="conn-http2">…</b></span>
  <span class="stat">gateway: <b id="rss">…</b> MB RSS · <b id="cpu">…</b> % CPU</span>
  <span class="stat">cache hits <b id="cache-hit">…</b></span>
  <span class="stat">rate-limit store <span id="store" class="badge">…</span></span>
</div>
<canvas id="chart" aria-label="requests per second, 5xx, 429 and p99 latency, last 5 minutes"></canvas>
<div class="legend muted"><span><i class="rps"></i>requests/s (left)</span><span><i class="e5"></i>5xx/s</span><span><i class="r429"></i>429/s</span><span><i class="p99"></i>p99 ms (right)</span></div>
<main id="pools"></main>
<script>${SCRIPT}</script>
</body>
</html>
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/**
 * The page's Content-Security-Policy: only its own inline script and style (by hash) run, it may only fetch from
 * its own origin, and no other page may frame it. The worker table shows request URIs, which clients choose;
 * they are inserted as text, and this policy is the second line should that ever change.
 */
export const DASHBOARD_CSP: string = [
  "default-src 'none'",
  `script-src ${sha256(SCRIPT)}`,
  `style-src ${sha256(STYLE)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');
