// One monitor, the SmokePing way: the RTT average per window (or rollup
// bucket) as a line coloured by that window's loss band, a grey "smoke" band
// from the lowest window average to the highest window max, loss % on its
// own axis, grey where there is no data at all. Every number comes from the
// CES metric API (`GET /V1.0/{project_id}/metric-data`), the same data any
// API client gets; the period is picked from the range (logic.mjs).
// The connection's Cloud Eye alarm rules (vpnmon's
// `/vpnmon/{project_id}/connections/{id}/alarms`, each rule as CES shows
// it) draw their thresholds, and their history (CES `alarm-histories`)
// shades the periods in alarm and fills the history list.
import { api, requireSession, header } from './session.mjs';
import * as L from './logic.mjs';
import { el } from './dom.mjs';

/* global uPlot */
const s = await requireSession();
header(s);

const $ = (id) => document.getElementById(id);
const monitorId = decodeURIComponent(location.pathname.replace(/\/+$/, '').split('/').pop());
const st = { range: '3h', from: null, to: null, utc: false, zoom: [] };
let info = null; // {monitor, connection, state, pings, rules}
let last = null; // the last data loaded
let chart = null;
let loads = 0;

function readHash() {
  const h = new URLSearchParams(location.hash.slice(1));
  if (h.get('range') && L.RANGES[h.get('range')]) st.range = h.get('range');
  const f = Number(h.get('from')), t = Number(h.get('to'));
  if (f && t && f < t) Object.assign(st, { range: null, from: f, to: t });
  st.utc = h.get('utc') === '1';
}
function writeHash() {
  const h = st.range ? { range: st.range } : { from: st.from, to: st.to };
  if (st.utc) h.utc = '1';
  history.replaceState(null, '', '#' + new URLSearchParams(h));
}

function showError(e) {
  $('error').textContent = e.message;
  $('error').hidden = false;
}

async function loadInfo() {
  const monitor = (await api(`/v5/{project_id}/connection-monitors/${encodeURIComponent(monitorId)}`)).connection_monitor;
  const [connection, state, rules] = await Promise.all([
    api(`/v5/{project_id}/vpn-connection/${monitor.vpn_connection_id}`).then((j) => j.vpn_connection),
    api(`/vpnmon/{project_id}/monitors/${encodeURIComponent(monitorId)}/state`).then((j) => j.monitor_state),
    api(`/vpnmon/{project_id}/connections/${monitor.vpn_connection_id}/alarms`).then((j) => j.metric_alarms),
  ]);
  const pings = state.last_window?.sent || 3;
  info = { monitor, connection, state, pings, rules };
  renderRules();
  document.title = `vpnmon · ${connection.name || monitor.vpn_connection_id}`;
  $('title').textContent = connection.name || monitor.vpn_connection_id;
  const link = state.link.up === true ? 'up' : state.link.up === false ? 'down' : 'unknown';
  const since = state.link.changed_at ? ` since ${L.fmtTime(Date.parse(state.link.changed_at), st.utc)}` : '';
  $('facts').replaceChildren(
    `${monitor.source_ip} → ${monitor.destination_ip} · ${monitor.status} · link `,
    Object.assign(document.createElement('span'), { className: `badge ${link}`, textContent: link }),
    `${since}${state.not_probed_reason ? ` · not probed: ${state.not_probed_reason}` : ''} · ${pings} pings per window`,
  );
  $('bands').replaceChildren(
    ...L.lossBands(pings).map((b) => {
      const li = document.createElement('li');
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = b.color;
      li.append(sw, b.label);
      return li;
    }),
  );
}

async function metric(name, filter, period, from, to) {
  const q = new URLSearchParams({
    namespace: 'SYS.VPN',
    metric_name: name,
    'dim.0': `evpn_connection_id,${info.monitor.vpn_connection_id}`,
    filter,
    period: String(period),
    from: String(Math.floor(from)),
    to: String(Math.ceil(to)),
  });
  return (await api(`/V1.0/{project_id}/metric-data?${q}`)).datapoints;
}

/** The four series of [from, to) at the right period (a longer one if the API says there are too many points). */
async function fetchSeries(from, to) {
  let period = L.pickPeriod(to - from);
  for (;;) {
    try {
      const [avg, max, loss, min] = await Promise.all([
        metric('link_average_latency', 'average', period, from, to),
        metric('link_max_latency', 'max', period, from, to),
        metric('link_packet_loss_rate', 'average', period, from, to),
        period === 1 ? Promise.resolve(null) : metric('link_average_latency', 'min', period, from, to),
      ]);
      return { period, from, to, avg, max, loss, min };
    } catch (e) {
      const next = L.longerPeriod(period);
      if (e.status === 400 && next) {
        period = next;
        continue;
      }
      throw e;
    }
  }
}

function currentSpan() {
  if (st.range) {
    const to = Date.now();
    return [to - L.RANGES[st.range], to];
  }
  return [st.from, st.to];
}

async function load() {
  const my = ++loads;
  const [from, to] = currentSpan();
  try {
    const [d, alarms] = await Promise.all([fetchSeries(from, to), fetchAlarms(from, to)]);
    if (my !== loads) return;
    $('error').hidden = true;
    last = { ...d, alarms };
    render();
  } catch (e) {
    if (my === loads) showError(e);
  }
}

// Most history records read per rule and range (10 pages of 100): a rule
// flapping all year shows its newest ones and says so.
const HISTORY_PAGES = 10;

async function historyPage(q) {
  return api(`/V1.0/{project_id}/alarm-histories?${new URLSearchParams(q)}`);
}

/**
 * The rules' history in [from, to] (CES `alarm-histories`, newest first),
 * each rule's status at `from` (its newest record before), and whether
 * some records were left out.
 */
async function fetchAlarms(from, to) {
  const out = { records: [], before: {}, truncated: false };
  await Promise.all(
    info.rules.map(async (r) => {
      const id = r.alarm_id;
      const prior = await historyPage({ alarm_id: id, to: String(Math.floor(from) - 1), limit: '1' });
      if (prior.alarm_histories.length) out.before[id] = prior.alarm_histories[0].alarm_status;
      for (let page = 0; page < HISTORY_PAGES; page++) {
        const j = await historyPage({ alarm_id: id, from: String(Math.floor(from)), to: String(Math.ceil(to)), limit: '100', start: String(page * 100) });
        out.records.push(...j.alarm_histories);
        if ((page + 1) * 100 >= j.meta_data.total) return;
      }
      out.truncated = true;
    }),
  );
  out.records.sort((a, b) => b.trigger_time - a.trigger_time);
  return out;
}

const cell = (text, attrs = {}) => el('td', attrs, text);

function stateBadge(state, enabled = true) {
  return el('span', { class: `badge ${L.stateClass(state, enabled)}` }, state);
}

/** The rules table (with their state now) and the link to a new rule here. */
function renderRules() {
  $('new-rule').href = `/dashboard/alarms?connection=${encodeURIComponent(info.monitor.vpn_connection_id)}#new`;
  const body = $('alarm-rules').tBodies[0];
  if (!info.rules.length) return;
  body.replaceChildren(
    ...info.rules.map((r) => {
      const tr = document.createElement('tr');
      Object.assign(tr.dataset, { alarmId: r.alarm_id, state: r.alarm_state, enabled: String(r.alarm_enabled) });
      tr.append(
        cell(r.alarm_name),
        cell(L.ruleText(r)),
        cell(String(r.alarm_level)),
        cell(stateBadge(r.alarm_state, r.alarm_enabled)),
        cell(L.fmtTime(r.update_time, st.utc)),
        cell(r.alarm_enabled ? 'yes' : 'no'),
      );
      return tr;
    }),
  );
}

function renderHistory({ records, truncated }, periods) {
  const names = Object.fromEntries(info.rules.map((r) => [r.alarm_id, r.alarm_name]));
  $('alarm-history').tBodies[0].replaceChildren(
    ...(records.length
      ? records.map((h) => {
          const tr = document.createElement('tr');
          Object.assign(tr.dataset, { history: '', alarmId: h.alarm_id, status: h.alarm_status, time: String(h.trigger_time) });
          const v = h.datapoints?.[0]?.value;
          tr.append(cell(L.fmtTime(h.trigger_time, st.utc)), cell(names[h.alarm_id] || h.alarm_name), cell(stateBadge(h.alarm_status)), cell(v === undefined ? '–' : String(v), { class: 'num' }));
          return tr;
        })
      : [Object.assign(document.createElement('tr'), { innerHTML: '<td colspan="4" class="hint">No state change in this range.</td>' })]),
  );
  $('history-note').textContent = truncated ? `Only the newest ${HISTORY_PAGES * 100} changes of a rule are shown; narrow the range for the rest.` : '';
  $('alarm-periods').replaceChildren(
    ...(periods.length
      ? periods.map((p) => {
          const li = document.createElement('li');
          Object.assign(li.dataset, { alarmPeriod: '', alarmId: p.alarmId, from: String(p.from), to: String(p.to), open: String(p.open) });
          li.textContent = `${names[p.alarmId] || p.alarmId}: ${L.fmtTime(p.from, st.utc)} – ${p.open ? 'now' : L.fmtTime(p.to, st.utc)} (${L.fmtDuration(p.to - p.from)}${p.open ? ', still in alarm' : ''})`;
          return li;
        })
      : [Object.assign(document.createElement('li'), { textContent: 'none in this range' })]),
  );
}

/** Chart-ready data of fetched series: aligned columns broken at the gaps. */
function prepare(d) {
  const { ts, cols } = L.align(
    [d.avg, d.min || d.avg, d.max, d.loss],
    ['average', d.min ? 'min' : 'average', 'max', 'average'],
  );
  const lossTs = d.loss.map((p) => p.timestamp);
  const step = L.stepOf(lossTs, d.period);
  const gaps = L.findGaps(lossTs, step, d.from, d.to);
  return { step, gaps, broken: L.breakAtGaps(ts, cols, gaps) };
}

function render() {
  const d = last;
  const { period, from, to } = d;
  const { step, gaps, broken } = prepare(d);
  const stats = L.rangeStats({
    avg: d.avg.map((p) => p.average),
    min: d.min ? d.min.map((p) => p.min) : null,
    max: d.max.map((p) => p.max),
    loss: d.loss.map((p) => p.average),
  });
  for (const [k, v] of Object.entries(stats)) {
    const e = document.querySelector(`[data-stat="${k}"]`);
    if (e) e.textContent = L.fmtStat(k, v);
  }
  $('gaps').replaceChildren(
    ...(gaps.length
      ? gaps.map((g) => {
          const li = document.createElement('li');
          li.dataset.gap = '';
          li.dataset.from = String(g.from);
          li.dataset.to = String(g.to);
          li.textContent = `${L.fmtTime(g.from, st.utc)} – ${L.fmtTime(g.to, st.utc)} (${L.fmtDuration(g.to - g.from)})`;
          return li;
        })
      : [Object.assign(document.createElement('li'), { textContent: 'none in this range' })]),
  );
  $('resolution').textContent =
    (period === 1 ? `raw probe windows (every ${Math.round(step / 1000)} s)` : `${L.fmtDuration(period * 1000)} rollups (CES period ${period})`) +
    ` · ${d.loss.length} datapoints · ${L.fmtTime(from, st.utc)} – ${L.fmtTime(to, st.utc)} ${st.utc ? 'UTC' : 'local time'}`;
  $('from').value = L.toInputValue(from, st.utc);
  $('to').value = L.toInputValue(to, st.utc);
  for (const b of document.querySelectorAll('[data-range]')) b.setAttribute('aria-pressed', String(b.dataset.range === st.range));
  $('reset').disabled = st.zoom.length === 0;
  const periods = L.alarmPeriods(d.alarms.records, from, to, d.alarms.before);
  const overlay = {
    shaded: L.mergePeriods(periods),
    thresholds: info.rules.filter((r) => r.alarm_enabled).map(L.thresholdOf).filter(Boolean),
  };
  renderHistory(d.alarms, periods);
  if (chart) chart.destroy();
  chart = plot($('chart'), broken, gaps, { from, to }, { height: 340, interactive: true, overlay });
  const box = $('chart');
  Object.assign(box.dataset, {
    from: String(from), to: String(to), period: String(period), points: String(d.loss.length), gaps: String(gaps.length),
    thresholds: String(overlay.thresholds.length), alarmPeriods: String(overlay.shaded.length),
  });
  document.body.dataset.ready = 'true';
  document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
  writeHash();
}

/** A uPlot chart of prepared data in `box` (replacing what is there). */
function plot(box, { ts, cols }, gaps, { from, to }, { height, interactive, overlay = { shaded: [], thresholds: [] } }) {
  const bands = L.lossBands(info.pings);
  const data = [ts.map((t) => t / 1000), ...cols];
  const clear = 'rgba(0,0,0,0)';
  const opts = {
    width: Math.max(300, box.clientWidth || 900),
    height,
    tzDate: (t) => (st.utc ? uPlot.tzDate(new Date(t * 1e3), 'Etc/UTC') : new Date(t * 1e3)),
    legend: { show: false },
    cursor: interactive
      ? { drag: { x: true, y: false, setScale: false }, points: { show: false } }
      : { show: false, drag: { x: false, y: false } },
    scales: {
      x: { time: true, range: () => [from / 1000, to / 1000] },
      // A threshold up to twice the data's top is brought into view; one
      // further up is marked at the top edge instead (paintThresholds).
      ms: {
        range: (u, lo, hi) => {
          const top = hi > 0 ? hi : 1;
          const near = overlay.thresholds.filter((t) => t.axis === 'ms' && t.value <= 2 * top).map((t) => t.value);
          return [0, Math.max(top, ...near) * 1.1];
        },
      },
      loss: { range: [0, 100] },
    },
    axes: interactive
      ? [
          {},
          { scale: 'ms', label: 'RTT (ms)', size: 60 },
          { scale: 'loss', side: 1, label: 'loss (%)', grid: { show: false }, size: 50 },
        ]
      : [{ size: 30 }, { scale: 'ms', size: 45 }, { scale: 'loss', side: 1, grid: { show: false }, size: 35 }],
    series: [
      {},
      { label: 'RTT avg', scale: 'ms', stroke: clear, width: 0, points: { show: false } },
      { label: 'RTT low', scale: 'ms', stroke: clear, width: 0, points: { show: false } },
      { label: 'RTT high', scale: 'ms', stroke: clear, width: 0, points: { show: false } },
      {
        label: 'loss',
        scale: 'loss',
        stroke: 'rgba(200,0,0,0.55)',
        fill: 'rgba(200,0,0,0.12)',
        width: 1,
        paths: uPlot.paths.stepped({ align: 1 }),
        points: { show: false },
      },
    ],
    bands: [{ series: [3, 2], fill: 'rgba(90,90,90,0.22)' }],
    hooks: {
      drawClear: [(u) => paintGaps(u, gaps), (u) => paintAlarms(u, overlay.shaded)],
      draw: [(u) => paintRtt(u, bands), (u) => paintThresholds(u, overlay.thresholds, interactive)],
      setSelect: [
        (u) => {
          if (!interactive || u.select.width < 4) return;
          const a = u.posToVal(u.select.left, 'x') * 1000;
          const b = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          zoomTo(a, b);
        },
      ],
    },
  };
  box.replaceChildren();
  return new uPlot(opts, data, box);
}

// SmokePing's detail page: the four standard ranges side by side, each at
// its own resolution; a click makes one the main chart's range.
const STRIPS = ['3h', '30h', '10d', '360d'];
let strips = [];
let stripLoads = 0;

async function loadStrips() {
  const my = ++stripLoads;
  const box = $('ranges');
  if (!box.children.length) {
    for (const r of STRIPS) {
      const fig = document.createElement('figure');
      fig.dataset.strip = r;
      fig.tabIndex = 0;
      fig.title = `Show the last ${r} above`;
      const cap = document.createElement('figcaption');
      cap.textContent = `Last ${r.replace('h', ' h').replace('d', ' d')}`;
      fig.append(cap, document.createElement('div'));
      const pick = () => $$range(r).click();
      fig.addEventListener('click', pick);
      fig.addEventListener('keydown', (e) => e.key === 'Enter' && pick());
      box.append(fig);
    }
  }
  const next = [];
  for (const r of STRIPS) {
    const to = Date.now(), from = to - L.RANGES[r];
    const d = await fetchSeries(from, to);
    if (my !== stripLoads) return;
    const fig = box.querySelector(`[data-strip="${r}"]`);
    const p = prepare(d);
    next.push(plot(fig.lastElementChild, p.broken, p.gaps, d, { height: 130, interactive: false }));
    fig.dataset.period = String(d.period);
  }
  strips.forEach((u) => u.destroy());
  strips = next;
  box.dataset.ready = 'true';
}

const $$range = (r) => document.querySelector(`button[data-range="${r}"]`);

function clipToPlot(u) {
  const { left, top, width, height } = u.bbox;
  u.ctx.beginPath();
  u.ctx.rect(left, top, width, height);
  u.ctx.clip();
}

/** Grey where there is no datapoint at all. */
function paintGaps(u, gaps) {
  const c = u.ctx;
  c.save();
  clipToPlot(u);
  c.fillStyle = 'rgba(128,128,128,0.28)';
  for (const g of gaps) {
    const x0 = u.valToPos(g.from / 1000, 'x', true);
    const x1 = u.valToPos(g.to / 1000, 'x', true);
    c.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
  }
  c.restore();
}

/** Light red over the periods in which a rule was in alarm, a red bar along the bottom. */
function paintAlarms(u, shaded) {
  const c = u.ctx;
  const dpr = window.devicePixelRatio || 1;
  c.save();
  clipToPlot(u);
  for (const p of shaded) {
    const x0 = u.valToPos(p.from / 1000, 'x', true);
    const x1 = u.valToPos(p.to / 1000, 'x', true);
    const w = Math.max(2 * dpr, x1 - x0);
    c.fillStyle = 'rgba(220,30,30,0.10)';
    c.fillRect(x0, u.bbox.top, w, u.bbox.height);
    c.fillStyle = 'rgba(220,30,30,0.75)';
    c.fillRect(x0, u.bbox.top + u.bbox.height - 4 * dpr, w, 4 * dpr);
  }
  c.restore();
}

/** Each rule's threshold as a dashed line on its axis, labelled; above the scale, a mark at the top edge. */
function paintThresholds(u, thresholds, labels) {
  const c = u.ctx;
  const dpr = window.devicePixelRatio || 1;
  c.save();
  clipToPlot(u);
  c.strokeStyle = '#d4480b';
  c.fillStyle = '#d4480b';
  c.lineWidth = 1.5 * dpr;
  c.setLineDash([6 * dpr, 4 * dpr]);
  c.font = `${11 * dpr}px system-ui, sans-serif`;
  const max = u.scales.ms.max;
  thresholds.forEach((t, i) => {
    const over = t.axis === 'ms' && t.value > max;
    const y = over ? u.bbox.top + 1 : u.valToPos(t.value, t.axis, true);
    c.beginPath();
    c.moveTo(u.bbox.left, y);
    c.lineTo(u.bbox.left + u.bbox.width, y);
    c.stroke();
    if (labels) {
      const text = `${over ? '▲ ' : ''}${t.label}`;
      c.fillText(text, u.bbox.left + 6 * dpr + i * 4 * dpr, over ? y + 12 * dpr : y - 4 * dpr);
    }
  });
  c.restore();
}

/** The RTT line, each segment in the loss band colour of the window it ends at; all-lost windows as dark red ticks on top. */
function paintRtt(u, bands) {
  const [xs, avg, , , loss] = u.data;
  const c = u.ctx;
  const dpr = window.devicePixelRatio || 1;
  c.save();
  clipToPlot(u);
  c.lineWidth = 2 * dpr;
  c.lineCap = 'round';
  let px = null, py = null;
  for (let i = 0; i < xs.length; i++) {
    const v = avg[i];
    const x = u.valToPos(xs[i], 'x', true);
    if (v === null || v === undefined) {
      if (loss[i] !== null && loss[i] >= 100) {
        c.strokeStyle = L.COLOR_ALL_LOST;
        c.beginPath();
        c.moveTo(x, u.bbox.top);
        c.lineTo(x, u.bbox.top + 8 * dpr);
        c.stroke();
      }
      px = null;
      continue;
    }
    const y = u.valToPos(v, 'ms', true);
    c.strokeStyle = L.bandOf(loss[i] ?? 0, bands).color;
    c.beginPath();
    if (px === null) {
      c.moveTo(x - dpr, y);
      c.lineTo(x + dpr, y);
    } else {
      c.moveTo(px, py);
      c.lineTo(x, y);
    }
    c.stroke();
    px = x;
    py = y;
  }
  c.restore();
}

function zoomTo(a, b) {
  const [from, to] = currentSpan();
  st.zoom.push({ range: st.range, from, to });
  Object.assign(st, { range: null, from: Math.floor(a), to: Math.ceil(b) });
  load();
}

for (const b of document.querySelectorAll('[data-range]')) {
  b.addEventListener('click', () => {
    Object.assign(st, { range: b.dataset.range, zoom: [] });
    load();
  });
}
$('custom').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const from = L.fromInputValue($('from').value, st.utc);
  const to = L.fromInputValue($('to').value, st.utc);
  if (!(from < to)) {
    showError(new Error('"From" must be before "To"'));
    return;
  }
  Object.assign(st, { range: null, from, to, zoom: [] });
  load();
});
$('reset').addEventListener('click', () => {
  const prev = st.zoom.pop();
  if (!prev) return;
  Object.assign(st, prev.range ? { range: prev.range } : { range: null, from: prev.from, to: prev.to });
  load();
});
$('utc').addEventListener('change', () => {
  st.utc = $('utc').checked;
  if (info) renderRules();
  if (last) render();
  loadStrips().catch(showError);
});
window.addEventListener('resize', () => {
  if (chart) chart.setSize({ width: Math.max(320, $('chart').clientWidth), height: 340 });
});
/** The rules again (their states move on). */
async function refreshRules() {
  info.rules = (await api(`/vpnmon/{project_id}/connections/${info.monitor.vpn_connection_id}/alarms`)).metric_alarms;
  renderRules();
}

setInterval(() => {
  if (!$('auto').checked || document.hidden || !info) return;
  if (st.range) refreshRules().then(load, showError);
  loadStrips().catch(showError);
}, 30_000);

readHash();
$('utc').checked = st.utc;
loadInfo()
  .then(load)
  .then(loadStrips)
  .catch(showError);
