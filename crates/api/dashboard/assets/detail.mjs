// One monitor, the SmokePing way: the RTT average per window (or rollup
// bucket) as a line coloured by that window's loss band, a grey "smoke" band
// from the lowest window average to the highest window max, loss % on its
// own axis, grey where there is no data at all. Every number comes from the
// CES metric API (`GET /V1.0/{project_id}/metric-data`), the same data any
// API client gets; the period is picked from the range (logic.mjs).
import { api, requireSession, header } from './session.mjs';
import * as L from './logic.mjs';

/* global uPlot */
const s = await requireSession();
header(s);

const $ = (id) => document.getElementById(id);
const monitorId = decodeURIComponent(location.pathname.replace(/\/+$/, '').split('/').pop());
const st = { range: '3h', from: null, to: null, utc: false, zoom: [] };
let info = null; // {monitor, connection, state, pings}
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
  const [connection, state] = await Promise.all([
    api(`/v5/{project_id}/vpn-connection/${monitor.vpn_connection_id}`).then((j) => j.vpn_connection),
    api(`/vpnmon/{project_id}/monitors/${encodeURIComponent(monitorId)}/state`).then((j) => j.monitor_state),
  ]);
  const pings = state.last_window?.sent || 3;
  info = { monitor, connection, state, pings };
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
    const d = await fetchSeries(from, to);
    if (my !== loads) return;
    $('error').hidden = true;
    last = d;
    render();
  } catch (e) {
    if (my === loads) showError(e);
  }
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
  if (chart) chart.destroy();
  chart = plot($('chart'), broken, gaps, { from, to }, { height: 340, interactive: true });
  const box = $('chart');
  Object.assign(box.dataset, { from: String(from), to: String(to), period: String(period), points: String(d.loss.length), gaps: String(gaps.length) });
  document.body.dataset.ready = 'true';
  document.body.dataset.renders = String(Number(document.body.dataset.renders || 0) + 1);
  writeHash();
}

/** A uPlot chart of prepared data in `box` (replacing what is there). */
function plot(box, { ts, cols }, gaps, { from, to }, { height, interactive }) {
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
      ms: { range: (u, lo, hi) => [0, hi > 0 ? hi * 1.1 : 1] },
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
      drawClear: [(u) => paintGaps(u, gaps)],
      draw: [(u) => paintRtt(u, bands)],
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
  if (last) render();
  loadStrips().catch(showError);
});
window.addEventListener('resize', () => {
  if (chart) chart.setSize({ width: Math.max(320, $('chart').clientWidth), height: 340 });
});
setInterval(() => {
  if (!$('auto').checked || document.hidden) return;
  if (st.range) load();
  loadStrips().catch(showError);
}, 30_000);

readHash();
$('utc').checked = st.utc;
loadInfo()
  .then(load)
  .then(loadStrips)
  .catch(showError);
