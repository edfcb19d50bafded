// The overview: one page of GET /vpnmon/{project_id}/overview, which sorts,
// filters and pages on the server (usable at 10 000 monitors).
import { api, requireSession, header } from './session.mjs';
import { alarmBadge, fmtDuration, fmtStat } from './logic.mjs';
import { el } from './dom.mjs';

const s = await requireSession();
header(s);

const state = { sort: 'connection', order: 'asc', offset: 0, limit: 50, q: '' };
const hashState = new URLSearchParams(location.hash.slice(1));
for (const k of ['sort', 'order', 'q']) if (hashState.get(k)) state[k] = hashState.get(k);
for (const k of ['offset', 'limit']) if (hashState.get(k)) state[k] = Number(hashState.get(k)) || state[k];

const $ = (id) => document.getElementById(id);
const tbody = document.querySelector('#monitors tbody');
const search = $('search');
search.value = state.q;
$('limit').value = String(state.limit);

const SVG = 'http://www.w3.org/2000/svg';
/** The last hour: RTT average as a line (broken where there is none), loss as red bars. */
function sparkline(sp) {
  const W = 120, H = 26;
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('width', W);
  svg.setAttribute('height', H);
  svg.setAttribute('class', 'spark');
  const t1 = Date.now(), t0 = t1 - 3600e3;
  const x = (t) => ((t - t0) / (t1 - t0)) * W;
  const rtts = sp.rtt_avg_ms.filter((v) => v !== null);
  const top = Math.max(...rtts, 0.001) * 1.1;
  let line = [];
  const flush = () => {
    if (line.length) {
      const p = document.createElementNS(SVG, 'polyline');
      p.setAttribute('points', line.join(' '));
      p.setAttribute('class', 'rtt');
      svg.append(p);
    }
    line = [];
  };
  sp.timestamps.forEach((t, i) => {
    const loss = sp.loss_pct[i];
    if (loss) {
      const r = document.createElementNS(SVG, 'rect');
      const h = (loss / 100) * H;
      r.setAttribute('x', x(t).toFixed(1));
      r.setAttribute('y', (H - h).toFixed(1));
      r.setAttribute('width', Math.max(1, W / 60).toFixed(1));
      r.setAttribute('height', h.toFixed(1));
      r.setAttribute('class', 'loss');
      svg.append(r);
    }
    const v = sp.rtt_avg_ms[i];
    const gap = i > 0 && t - sp.timestamps[i - 1] > 1.5 * sp.period * 1000;
    if (v === null || gap) flush();
    if (v !== null) line.push(`${x(t).toFixed(1)},${(H - 1 - (v / top) * (H - 2)).toFixed(1)}`);
  });
  flush();
  return svg;
}

function linkCell(m) {
  const up = m.link.up;
  const cls = up === true ? 'up' : up === false ? 'down' : 'unknown';
  const text = up === true ? 'up' : up === false ? 'down' : m.not_probed_reason ? 'not probed' : 'unknown';
  const b = el('span', { class: `badge ${cls}` }, text);
  if (m.not_probed_reason) b.title = m.not_probed_reason;
  return b;
}

function alarmCell(m) {
  const a = alarmBadge(m.alarm);
  if (!a) return '–';
  const b = el('span', { class: `badge ${a.cls}` }, a.text);
  b.title = a.title;
  return b;
}

function row(m) {
  const w = m.last_window;
  const link = m.link.up === true ? 'up' : m.link.up === false ? 'down' : 'unknown';
  const since = m.link.changed_at ? Date.parse(m.link.changed_at) : null;
  const name = el('a', { href: `/dashboard/monitors/${m.id}` }, m.connection_name || m.vpn_connection_id);
  return el('tr', { 'data-monitor-id': m.id, 'data-link': link, 'data-status': m.status, 'data-alarm': m.alarm?.state ?? 'none' },
    el('td', {}, name, el('div', { class: 'id' }, m.vpn_connection_id)),
    el('td', {}, `${m.source_ip} → ${m.destination_ip}`),
    el('td', { 'data-col': 'status' }, m.status),
    el('td', { 'data-col': 'link' }, linkCell(m)),
    el('td', { 'data-col': 'since', title: m.link.changed_at || '' }, since ? `${fmtDuration(Date.now() - since)} ago` : '–'),
    el('td', { class: 'num', 'data-col': 'rtt_avg' }, fmtStat('rtt', w?.rtt_avg_ms)),
    el('td', { class: 'num', 'data-col': 'rtt_max' }, fmtStat('rtt', w?.rtt_max_ms)),
    el('td', { class: 'num', 'data-col': 'loss' }, w ? fmtStat('loss', w.loss_pct) : '–'),
    el('td', { class: 'num', 'data-col': 'jitter' }, fmtStat('rtt', w?.jitter_ms)),
    el('td', { 'data-col': 'alarm' }, alarmCell(m)),
    el('td', {}, sparkline(m.sparkline)),
  );
}

let seq = 0;
async function load() {
  const my = ++seq;
  const q = new URLSearchParams({ sort: state.sort, order: state.order, limit: state.limit, offset: state.offset });
  if (state.q) q.set('q', state.q);
  history.replaceState(null, '', '#' + new URLSearchParams({ sort: state.sort, order: state.order, offset: state.offset, limit: state.limit, q: state.q }));
  try {
    const j = await api(`/vpnmon/{project_id}/overview?${q}`);
    if (my !== seq) return;
    $('error').hidden = true;
    tbody.replaceChildren(...j.monitors.map(row));
    if (j.monitors.length === 0) {
      tbody.append(el('tr', { class: 'empty' }, el('td', { colSpan: 11 }, state.q ? 'No monitor matches.' : 'No connection monitors in this project yet.')));
    }
    const first = j.total_count ? j.offset + 1 : 0;
    $('range').textContent = `${first}–${j.offset + j.monitors.length} of ${j.total_count}`;
    $('prev').disabled = j.offset === 0;
    $('next').disabled = j.offset + j.monitors.length >= j.total_count;
    for (const th of document.querySelectorAll('th[data-sort]')) {
      th.setAttribute('aria-sort', th.dataset.sort === state.sort ? (state.order === 'asc' ? 'ascending' : 'descending') : 'none');
    }
    for (const b of document.querySelectorAll('button[data-top]')) {
      const on = b.dataset.top ? state.sort === b.dataset.top && state.order === 'desc' : false;
      b.setAttribute('aria-pressed', String(on));
    }
    document.body.dataset.ready = 'true';
    document.body.dataset.total = String(j.total_count);
  } catch (e) {
    if (my !== seq) return;
    $('error').textContent = e.message;
    $('error').hidden = false;
  }
}

for (const th of document.querySelectorAll('th[data-sort]')) {
  th.tabIndex = 0;
  const go = () => {
    const k = th.dataset.sort;
    if (state.sort === k) state.order = state.order === 'asc' ? 'desc' : 'asc';
    else {
      state.sort = k;
      state.order = ['rtt_avg', 'rtt_max', 'loss', 'jitter', 'alarm'].includes(k) ? 'desc' : 'asc';
    }
    state.offset = 0;
    load();
  };
  th.addEventListener('click', go);
  th.addEventListener('keydown', (e) => e.key === 'Enter' && go());
}
for (const b of document.querySelectorAll('button[data-top]')) {
  b.addEventListener('click', () => {
    Object.assign(state, b.dataset.top ? { sort: b.dataset.top, order: 'desc' } : { sort: 'connection', order: 'asc' });
    state.offset = 0;
    load();
  });
}
let typing;
search.addEventListener('input', () => {
  clearTimeout(typing);
  typing = setTimeout(() => {
    state.q = search.value.trim();
    state.offset = 0;
    load();
  }, 250);
});
$('limit').addEventListener('change', () => {
  state.limit = Number($('limit').value);
  state.offset = 0;
  load();
});
$('prev').addEventListener('click', () => {
  state.offset = Math.max(0, state.offset - state.limit);
  load();
});
$('next').addEventListener('click', () => {
  state.offset += state.limit;
  load();
});
setInterval(() => {
  if ($('auto').checked && !document.hidden) load();
}, 30_000);
load();
