// Unit tests of the dashboard's pure logic: `node --test unit/`.
import test from 'node:test';
import assert from 'node:assert/strict';
import * as L from '../../../crates/api/dashboard/assets/logic.mjs';

const H = 3600e3, D = 86400e3;

test('each range preset gets its resolution: raw windows, then rollups', () => {
  assert.equal(L.pickPeriod(L.RANGES['1h']), 1);
  assert.equal(L.pickPeriod(L.RANGES['3h']), 1);
  assert.equal(L.pickPeriod(L.RANGES['30h']), 300);
  assert.equal(L.pickPeriod(L.RANGES['10d']), 1200);
  assert.equal(L.pickPeriod(L.RANGES['360d']), 86400);
});

test('the period depends on the probe window and the point budget', () => {
  assert.equal(L.pickPeriod(3 * H, { windowMs: 1000 }), 60, '10 800 one-second windows are too many');
  assert.equal(L.pickPeriod(4 * H), 1, '1440 raw windows fit');
  assert.equal(L.pickPeriod(5 * H), 60);
  assert.equal(L.pickPeriod(30 * H, { maxPoints: 3000 }), 60);
  assert.equal(L.pickPeriod(2000 * D), 86400, 'nothing longer than a day');
  assert.equal(L.pickPeriod(10 * 60e3), 1);
});

test('every period the picker can return is one the CES API serves, within its point limit', () => {
  for (const r of [H, 3 * H, 7 * H, 30 * H, 3 * D, 10 * D, 40 * D, 360 * D]) {
    const p = L.pickPeriod(r);
    assert.ok(L.PERIODS.includes(p));
    assert.ok(r / (p === 1 ? 10_000 : p * 1000) <= L.CES_MAX_POINTS, `${r} ms at ${p}`);
  }
  assert.equal(L.longerPeriod(1), 60);
  assert.equal(L.longerPeriod(14400), 86400);
  assert.equal(L.longerPeriod(86400), null);
});

test('SmokePing loss bands for 20 pings: 0, 1, 2, 3, 4-5, 6-10, 11-19, 20', () => {
  const b = L.lossBands(20);
  assert.deepEqual(b.map((x) => [x.lo, x.hi]), [[-1, 0], [0, 1], [1, 2], [2, 3], [3, 5], [5, 10], [10, 19], [19, 20]]);
  assert.deepEqual(b.map((x) => x.color), ['#26ff00', '#00b8ff', '#0059ff', '#7e00ff', '#ff00ff', '#ff5500', '#ff0000', '#a00000']);
  assert.deepEqual(b.map((x) => x.label), ['0/20 lost', '1/20 lost', '2/20 lost', '3/20 lost', '4–5/20 lost', '6–10/20 lost', '11–19/20 lost', '20/20 lost']);
});

test('small ping counts still get distinct bands; the last is all lost', () => {
  assert.deepEqual(L.lossBands(3).map((x) => x.label), ['0/3 lost', '1/3 lost', '2/3 lost', '3/3 lost']);
  assert.deepEqual(L.lossBands(1).map((x) => x.label), ['0/1 lost', '1/1 lost']);
  assert.deepEqual(L.lossBands(10).map((x) => x.hi), [0, 1, 2, 3, 4, 5, 9, 10]);
  assert.deepEqual(L.lossBands(100).map((x) => x.hi), [0, 1, 5, 10, 25, 50, 99, 100]);
});

test('a loss percentage falls in the band of its lost pings, fractions counting upwards', () => {
  const b = L.lossBands(20);
  assert.equal(L.bandOf(0, b).color, '#26ff00');
  assert.equal(L.bandOf(5, b).label, '1/20 lost');
  assert.equal(L.bandOf(2.5, b).label, '1/20 lost', 'half a ping (a rollup average) is more than 0');
  assert.equal(L.bandOf(25, b).label, '4–5/20 lost');
  assert.equal(L.bandOf(26, b).label, '6–10/20 lost');
  assert.equal(L.bandOf(95, b).label, '11–19/20 lost');
  assert.equal(L.bandOf(100, b).color, '#a00000');
  const three = L.lossBands(3);
  assert.equal(L.bandOf(100 / 3, three).label, '1/3 lost', 'float rounding of 33.333 %');
  assert.equal(L.bandOf(200 / 3, three).label, '2/3 lost');
});

test('series are joined on their timestamps, missing values as null', () => {
  const r = L.align(
    [[{ timestamp: 10, average: 1 }, { timestamp: 30, average: 3 }], [{ timestamp: 20, max: 9 }, { timestamp: 30, max: 8 }]],
    ['average', 'max'],
  );
  assert.deepEqual(r, { ts: [10, 20, 30], cols: [[1, null, 3], [null, 9, 8]] });
});

test('gaps are where datapoints are more than 1.5 steps apart, and long empty ends', () => {
  const ts = [0, 10, 20, 60, 70].map((s) => s * 1000);
  assert.deepEqual(L.findGaps(ts, 10_000, 0, 80_000), [{ from: 30_000, to: 60_000 }]);
  assert.deepEqual(L.findGaps(ts, 10_000, -100_000, 200_000), [
    { from: -100_000, to: 0 },
    { from: 30_000, to: 60_000 },
    { from: 80_000, to: 200_000 },
  ]);
  assert.deepEqual(L.findGaps([], 10_000, 0, 50_000), [{ from: 0, to: 50_000 }]);
  assert.equal(L.stepOf(ts, 1), 10_000, 'raw windows: the median spacing');
  assert.equal(L.stepOf(ts, 300), 300_000);
});

test('a row of nulls breaks the lines inside each gap', () => {
  const ts = [0, 10, 50, 60];
  const r = L.breakAtGaps(ts, [[1, 2, 3, 4]], [{ from: 20, to: 50 }]);
  assert.deepEqual(r, { ts: [0, 10, 20, 50, 60], cols: [[1, 2, null, 3, 4]] });
  assert.deepEqual(L.breakAtGaps(ts, [[1, 2, 3, 4]], [{ from: -5, to: 0 }]), { ts, cols: [[1, 2, 3, 4]] });
});

test('legend numbers are those of the datapoints of the range', () => {
  const s = L.rangeStats({ avg: [1, 2, null, 3], min: [0.5, 1.5, 2.5], max: [4, 9, 5], loss: [0, 50, 100, 10] });
  assert.deepEqual(s, { avg: 2, min: 0.5, max: 9, now: 3, sd: Math.sqrt(2 / 3), loss: 40 });
  const raw = L.rangeStats({ avg: [2, 1], min: null, max: [3, 3], loss: [0, 0] });
  assert.equal(raw.min, 1, 'raw windows: the least average');
  const none = L.rangeStats({ avg: [], min: null, max: [], loss: [] });
  assert.deepEqual(none, { avg: null, min: null, max: null, now: null, sd: null, loss: null });
  assert.equal(L.fmtStat('avg', 1.23456), '1.235');
  assert.equal(L.fmtStat('loss', 33.3333), '33.33');
  assert.equal(L.fmtStat('avg', null), '–');
});

test('times format and parse in UTC or local time', () => {
  const t = Date.UTC(2026, 0, 2, 3, 4, 5);
  assert.equal(L.fmtTime(t, true), '2026-01-02 03:04:05');
  assert.equal(L.toInputValue(t, true), '2026-01-02T03:04');
  assert.equal(L.fromInputValue('2026-01-02T03:04', true), Date.UTC(2026, 0, 2, 3, 4));
  assert.equal(L.fromInputValue(L.toInputValue(t, false), false), t - 5000);
  assert.ok(Number.isNaN(L.fromInputValue('yesterday', true)));
  assert.equal(L.fmtDuration(40e3), '40 s');
  assert.equal(L.fmtDuration(185 * 60e3), '3 h 5 min');
  assert.equal(L.fmtDuration(52 * H), '2 d 4 h');
});

const rec = (id, status, t) => ({ alarm_id: id, alarm_status: status, trigger_time: t });

test('alarm periods run from a change to alarm until the next other state', () => {
  const hs = [rec('a', 'ok', 100), rec('a', 'alarm', 200), rec('a', 'ok', 300), rec('a', 'alarm', 400), rec('a', 'insufficient_data', 450)];
  assert.deepEqual(L.alarmPeriods(hs, 0, 1000), [
    { alarmId: 'a', from: 200, to: 300, open: false },
    { alarmId: 'a', from: 400, to: 450, open: false },
  ]);
});

test('an alarm open at the start or the end of the range is cut there', () => {
  const hs = [rec('a', 'ok', 300), rec('a', 'alarm', 800), rec('b', 'alarm', 50)];
  assert.deepEqual(L.alarmPeriods(hs, 100, 1000, { a: 'alarm' }), [
    { alarmId: 'a', from: 100, to: 300, open: false },
    { alarmId: 'a', from: 800, to: 1000, open: true },
  ], 'b changed before the range and is not said to be in alarm');
  assert.deepEqual(L.alarmPeriods([], 100, 1000, { c: 'alarm', d: 'ok' }), [{ alarmId: 'c', from: 100, to: 1000, open: true }]);
  assert.deepEqual(L.alarmPeriods([rec('a', 'alarm', 200), rec('a', 'alarm', 250), rec('a', 'ok', 260)], 0, 1000), [
    { alarmId: 'a', from: 200, to: 260, open: false },
  ], 'a repeated alarm record continues the period');
});

test('overlapping periods of several rules shade once', () => {
  assert.deepEqual(L.mergePeriods([{ from: 5, to: 9 }, { from: 1, to: 3 }, { from: 2, to: 4 }, { from: 9, to: 12 }]), [
    { from: 1, to: 4 },
    { from: 5, to: 12 },
  ]);
});

const rule = (metric, filter, op, value, unit, period = 1, count = 2) => ({
  alarm_name: 'r',
  metric: { metric_name: metric },
  condition: { filter, comparison_operator: op, value, unit, period, count },
});

test('a threshold line goes on the axis of its metric, where its filter is what is drawn', () => {
  assert.deepEqual(L.thresholdOf(rule('link_packet_loss_rate', 'average', '>=', 50, '%')), { axis: 'loss', value: 50, label: 'r >= 50 %' });
  assert.equal(L.thresholdOf(rule('public_max_latency', 'max', '>', 150, 'ms')).axis, 'ms');
  assert.equal(L.thresholdOf(rule('link_average_latency', 'variance', '>', 4, 'ms')), null);
  assert.equal(L.thresholdOf(rule('link_average_latency', 'sum', '>', 4, 'ms')), null);
});

test('a rule reads as its condition', () => {
  assert.equal(L.ruleText(rule('link_packet_loss_rate', 'average', '>=', 50, '%')), 'link_packet_loss_rate average >= 50 % for 2 raw windows');
  assert.equal(L.ruleText(rule('link_max_latency', 'max', '>', 150, 'ms', 300, 1)), 'link_max_latency max > 150 ms for 1 period of 5 min');
});

test('the overview badge says the worst state of the connection\'s rules', () => {
  assert.equal(L.alarmBadge(null), null);
  assert.deepEqual(L.alarmBadge({ state: 'alarm', rules: 2, enabled: 2, in_alarm: 2 }), { text: 'alarm (2)', cls: 'down', title: '2 rules, 2 enabled, 2 in alarm' });
  assert.equal(L.alarmBadge({ state: 'insufficient_data', rules: 1, enabled: 1, in_alarm: 0 }).text, 'no data');
  assert.equal(L.alarmBadge({ state: 'disabled', rules: 1, enabled: 0, in_alarm: 0 }).cls, 'off');
});

test('a disabled rule\'s state is shown as off, whatever it was', () => {
  assert.deepEqual(['alarm', 'ok', 'insufficient_data'].map((s) => L.stateClass(s)), ['down', 'up', 'unknown']);
  assert.equal(L.stateClass('alarm', false), 'off');
});
