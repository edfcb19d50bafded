// Pure logic of the dashboard (no DOM, no fetch), unit-tested with
// `node --test` (tests/browser/unit/). Times are milliseconds since the
// epoch unless a name says otherwise.

/** Periods (s) the CES metric API serves; 1 is the raw probe window. */
export const PERIODS = [1, 60, 300, 1200, 3600, 14400, 86400];

/** Most datapoints one CES request answers (crates/api/src/routes/ces.rs). */
export const CES_MAX_POINTS = 3000;

/** The range presets (SmokePing's detail ranges plus the last hour). */
export const RANGES = {
  '1h': 3600e3,
  '3h': 3 * 3600e3,
  '30h': 30 * 3600e3,
  '10d': 10 * 86400e3,
  '360d': 360 * 86400e3,
};

/**
 * The period to ask for a range: the shortest whose datapoints fit in
 * `maxPoints` (a chart is ~1000 px wide, so ~1500 points is dense enough),
 * counting one raw datapoint per probe window of `windowMs`.
 * 3 h -> raw windows, 30 h -> 300 s, 10 d -> 1200 s, 360 d -> 86400 s.
 */
export function pickPeriod(rangeMs, { windowMs = 10_000, maxPoints = 1500 } = {}) {
  for (const p of PERIODS) {
    const step = p === 1 ? windowMs : p * 1000;
    if (rangeMs / step <= maxPoints) return p;
  }
  return PERIODS[PERIODS.length - 1];
}

/** The next longer period than `p`, or null. */
export function longerPeriod(p) {
  const i = PERIODS.indexOf(p);
  return i >= 0 && i + 1 < PERIODS.length ? PERIODS[i + 1] : null;
}

// SmokePing's loss colours (lib/Smokeping.pm): 0 lost, ~1 %, ~5 %, ~10 %,
// ~25 %, ~50 %, up to N-1, all N lost. Each edge in lost pings is at least
// 1, 2, 3, 4, 5 so that a small N still gets distinct bands.
const EDGES = [
  { pct: 1, min: 1, color: '#00b8ff' },
  { pct: 5, min: 2, color: '#0059ff' },
  { pct: 10, min: 3, color: '#7e00ff' },
  { pct: 25, min: 4, color: '#ff00ff' },
  { pct: 50, min: 5, color: '#ff5500' },
];
export const COLOR_NO_LOSS = '#26ff00';
export const COLOR_ALL_LOST = '#a00000';
const COLOR_NEARLY_ALL = '#ff0000';

/**
 * The loss bands for windows of `n` pings: [{lo, hi, color, label}], where
 * a window with `lost` pings lost is in the band with lo < lost <= hi
 * (the first band is exactly 0 lost, the last exactly n).
 * For n = 20: 0, 1, 2, 3, 4-5, 6-10, 11-19, 20.
 */
export function lossBands(n) {
  const N = Math.max(1, Math.round(n));
  const bands = [{ lo: -1, hi: 0, color: COLOR_NO_LOSS }];
  let prev = 0;
  const push = (edge, color) => {
    if (edge > prev && edge < N) {
      bands.push({ lo: prev, hi: edge, color });
      prev = edge;
    }
  };
  for (const e of EDGES) push(Math.max(Math.round((N * e.pct) / 100), e.min), e.color);
  push(N - 1, COLOR_NEARLY_ALL);
  bands.push({ lo: prev, hi: N, color: COLOR_ALL_LOST });
  for (const b of bands) {
    const from = b.lo + 1;
    const what = b.hi === 0 ? '0' : from === b.hi ? `${b.hi}` : `${from}–${b.hi}`;
    b.label = `${what}/${N} lost`;
  }
  return bands;
}

/**
 * The band of a loss percentage for windows of `n` pings (a rollup's
 * average loss can be a fraction of a ping: it counts as more than the
 * edge below it).
 */
export function bandOf(lossPct, bands) {
  const n = bands[bands.length - 1].hi;
  const lost = (lossPct * n) / 100;
  if (lost <= 1e-9) return bands[0];
  for (const b of bands.slice(1)) if (lost <= b.hi + 1e-9) return b;
  return bands[bands.length - 1];
}

/**
 * Joins CES datapoint lists ([{timestamp, <filter>: value}]) on their
 * timestamps: {ts: [ms...], cols: [[value|null...]...]}, ascending.
 */
export function align(lists, keys) {
  const all = new Set();
  for (const l of lists) for (const d of l) all.add(d.timestamp);
  const ts = [...all].sort((a, b) => a - b);
  const at = new Map(ts.map((t, i) => [t, i]));
  const cols = lists.map((l, k) => {
    const c = new Array(ts.length).fill(null);
    for (const d of l) c[at.get(d.timestamp)] = d[keys[k]] ?? null;
    return c;
  });
  return { ts, cols };
}

/** The step between datapoints: the period, or for raw windows the median spacing. */
export function stepOf(ts, period, fallbackMs = 10_000) {
  if (period !== 1) return period * 1000;
  if (ts.length < 2) return fallbackMs;
  const d = [];
  for (let i = 1; i < ts.length; i++) d.push(ts[i] - ts[i - 1]);
  d.sort((a, b) => a - b);
  return d[Math.floor(d.length / 2)] || fallbackMs;
}

/**
 * Where there is no datapoint at all ("vpnmon was down or not probing",
 * which is not "the link was down": a down link still has windows, with
 * 100 % loss): [{from, to}] between datapoints more than 1.5 steps apart,
 * and at the ends of [from, to) when more than `edgeSteps` steps are
 * missing there (the newest buckets are rolled up a little late).
 */
export function findGaps(ts, stepMs, from, to, edgeSteps = 3) {
  const gaps = [];
  if (ts.length === 0) return to > from ? [{ from, to }] : [];
  if (ts[0] - from > edgeSteps * stepMs) gaps.push({ from, to: ts[0] });
  for (let i = 1; i < ts.length; i++) {
    if (ts[i] - ts[i - 1] > 1.5 * stepMs) gaps.push({ from: ts[i - 1] + stepMs, to: ts[i] });
  }
  const end = ts[ts.length - 1] + stepMs;
  if (to - end > edgeSteps * stepMs) gaps.push({ from: end, to });
  return gaps;
}

/**
 * Inserts a row of nulls inside every interior gap so that a chart breaks
 * its lines there: returns {ts, cols} like `align`.
 */
export function breakAtGaps(ts, cols, gaps) {
  const inner = gaps.filter((g) => g.from > (ts[0] ?? Infinity) && g.to <= ts[ts.length - 1]);
  if (inner.length === 0) return { ts, cols };
  const out = { ts: [], cols: cols.map(() => []) };
  let g = 0;
  for (let i = 0; i < ts.length; i++) {
    while (g < inner.length && inner[g].from <= ts[i] && inner[g].from > (ts[i - 1] ?? -Infinity)) {
      out.ts.push(inner[g].from);
      out.cols.forEach((c) => c.push(null));
      g++;
    }
    out.ts.push(ts[i]);
    cols.forEach((c, k) => out.cols[k].push(c[i]));
  }
  return out;
}

const nums = (xs) => xs.filter((v) => typeof v === 'number' && Number.isFinite(v));

/**
 * The legend's numbers for a range, from the CES datapoints of that range:
 * avg = mean of the `average` latency datapoints, min = least of the
 * `min` latency datapoints (the raw windows' averages at period 1: CES has
 * no per-window minimum), max = greatest `max` of link_max_latency, now =
 * the newest average, sd = standard deviation of the averages (population),
 * loss = mean of the `average` loss datapoints (%). null where no data.
 */
export function rangeStats({ avg, min, max, loss }) {
  const a = nums(avg);
  const lo = nums(min && min.length ? min : avg);
  const hi = nums(max);
  const l = nums(loss);
  const mean = (xs) => (xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : null);
  const m = mean(a);
  return {
    avg: m,
    min: lo.length ? Math.min(...lo) : null,
    max: hi.length ? Math.max(...hi) : null,
    now: a.length ? a[a.length - 1] : null,
    sd: a.length ? Math.sqrt(mean(a.map((v) => (v - m) ** 2))) : null,
    loss: mean(l),
  };
}

/** A legend number: RTT in ms with 3 decimals, loss % with 2; "–" for none. */
export function fmtStat(name, v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return name === 'loss' ? v.toFixed(2) : v.toFixed(3);
}

/** `YYYY-MM-DD HH:MM:SS` in UTC or local time. */
export function fmtTime(ms, utc) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  const [Y, M, D, h, m, s] = utc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds()];
  return `${Y}-${p(M)}-${p(D)} ${p(h)}:${p(m)}:${p(s)}`;
}

/** The value of a `datetime-local` input (minutes) for `ms`. */
export function toInputValue(ms, utc) {
  return fmtTime(ms, utc).slice(0, 16).replace(' ', 'T');
}

/** `ms` of a `datetime-local` input value, read as UTC or local time; NaN if invalid. */
export function fromInputValue(v, utc) {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(v || '');
  if (!m) return NaN;
  const [Y, M, D, h, mi, s] = m.slice(1).map((x) => Number(x || 0));
  return utc ? Date.UTC(Y, M - 1, D, h, mi, s) : new Date(Y, M - 1, D, h, mi, s).getTime();
}

/** "3 h 5 min", "2 d 4 h", "40 s": how long ago / how long. */
export function fmtDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

// ---------- alarms ----------

/** The chart axis a rule's metric is drawn on: RTT (`ms`) or loss (`loss`). */
export function axisOf(metricName) {
  if (/_packet_loss_rate$/.test(metricName)) return 'loss';
  if (/_(average|max)_latency$/.test(metricName)) return 'ms';
  return null;
}

/**
 * A rule's threshold line on the chart, or null where its value is not on
 * a plotted scale (a `sum` or `variance` filter is not the line drawn).
 */
export function thresholdOf(rule) {
  const axis = axisOf(rule.metric.metric_name);
  const c = rule.condition;
  if (!axis || !['average', 'max', 'min'].includes(c.filter)) return null;
  return { axis, value: Number(c.value), label: `${rule.alarm_name} ${c.comparison_operator} ${c.value} ${c.unit || (axis === 'ms' ? 'ms' : '%')}` };
}

const PERIOD_WORDS = { 1: 'raw window', 300: '5 min', 1200: '20 min', 3600: '1 h', 14400: '4 h', 86400: '1 d' };

/** "link_packet_loss_rate average >= 50 % for 2 raw windows". */
export function ruleText(rule) {
  const c = rule.condition;
  const unit = c.unit || (axisOf(rule.metric.metric_name) === 'loss' ? '%' : 'ms');
  const each = PERIOD_WORDS[c.period] || `${c.period} s`;
  const times = c.count === 1 ? (c.period === 1 ? `1 ${each}` : `1 period of ${each}`) : c.period === 1 ? `${c.count} ${each}s` : `${c.count} periods of ${each}`;
  return `${rule.metric.metric_name} ${c.filter} ${c.comparison_operator} ${c.value} ${unit} for ${times}`;
}

/**
 * The alarm periods in [from, to] of history records (CES
 * `alarm_histories`, any order, any rules): per rule, from a change to
 * `alarm` until its next change to another state; `before` maps an
 * alarm_id to its status at `from` (its newest record before it). A period
 * still open at `to` ends there with `open: true`. Returns them by start.
 */
export function alarmPeriods(records, from, to, before = {}) {
  const byRule = new Map();
  for (const r of records) {
    if (r.trigger_time < from || r.trigger_time > to) continue;
    if (!byRule.has(r.alarm_id)) byRule.set(r.alarm_id, []);
    byRule.get(r.alarm_id).push(r);
  }
  for (const id of Object.keys(before)) if (!byRule.has(id)) byRule.set(id, []);
  const out = [];
  for (const [id, rs] of byRule) {
    rs.sort((a, b) => a.trigger_time - b.trigger_time);
    let start = before[id] === 'alarm' ? from : null;
    for (const r of rs) {
      if (r.alarm_status === 'alarm') {
        if (start === null) start = r.trigger_time;
      } else if (start !== null) {
        out.push({ alarmId: id, from: start, to: r.trigger_time, open: false });
        start = null;
      }
    }
    if (start !== null) out.push({ alarmId: id, from: start, to, open: true });
  }
  return out.sort((a, b) => a.from - b.from || a.to - b.to);
}

/** The union of periods (for shading: overlapping rules shade once). */
export function mergePeriods(periods) {
  const ps = [...periods].sort((a, b) => a.from - b.from);
  const out = [];
  for (const p of ps) {
    const last = out[out.length - 1];
    if (last && p.from <= last.to) last.to = Math.max(last.to, p.to);
    else out.push({ from: p.from, to: p.to });
  }
  return out;
}

/** The badge class of a rule's state (`off` for a disabled rule, whose state says nothing now). */
export function stateClass(state, enabled = true) {
  return !enabled ? 'off' : state === 'alarm' ? 'down' : state === 'ok' ? 'up' : 'unknown';
}

/** The overview's alarm badge: text and CSS class of a row's `alarm` summary (null: no rules). */
export function alarmBadge(a) {
  if (!a) return null;
  const text = { alarm: a.in_alarm > 1 ? `alarm (${a.in_alarm})` : 'alarm', insufficient_data: 'no data', ok: 'ok', disabled: 'disabled' }[a.state] || a.state;
  const cls = { alarm: 'down', insufficient_data: 'unknown', ok: 'up', disabled: 'off' }[a.state] || 'unknown';
  return { text, cls, title: `${a.rules} rule${a.rules === 1 ? '' : 's'}, ${a.enabled} enabled, ${a.in_alarm} in alarm` };
}
