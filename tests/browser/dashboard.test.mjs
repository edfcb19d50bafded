// The dashboard in a real Chromium (Debian's package, driven by
// playwright-core; no browser download). Started by
// crates/vpnmon/tests/dashboard.rs, which runs vpnmon on 127.0.0.1:0, writes
// the monitor data through the store and passes what it wrote in the JSON
// file named by VPNMON_DASHBOARD_FIXTURE.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const fx = JSON.parse(readFileSync(process.env.VPNMON_DASHBOARD_FIXTURE, 'utf8'));
const B = fx.base;
const MIN = 60e3;

// As root Chromium needs --no-sandbox; the rest keeps it off the (closed) network.
const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
];

let browser;
const problems = []; // console errors and page errors, of every page
const urls = []; // every URL any page asked for

test.before(async () => {
  // playwright starts Chromium with a fresh, empty --user-data-dir of its own.
  browser = await chromium.launch({
    executablePath: process.env.VPNMON_CHROMIUM || '/usr/bin/chromium',
    args: ARGS,
    headless: true,
  });
});
test.after(async () => {
  await browser?.close();
});

/**
 * Drops the browser's own console line for a request that was meant to
 * fail ("Failed to load resource: ... 401 (Unauthorized)") on page `path`:
 * the only console errors let through.
 */
function expected(re, path) {
  for (let i = problems.length - 1; i >= 0; i--) {
    const m = /^console: (.*) \((.*)\)$/.exec(problems[i]);
    if (m && re.test(m[1]) && m[1].startsWith('Failed to load resource') && new URL(m[2]).pathname === path) problems.splice(i, 1);
  }
}

async function newPage() {
  const ctx = await browser.newContext({ viewport: { width: 1360, height: 900 }, timezoneId: 'Europe/Berlin' });
  const page = await ctx.newPage();
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()} (${page.url()})`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message} (${page.url()})`));
  page.on('request', (r) => urls.push(r.url()));
  return page;
}

/** Logs in on the login page; unless `refused`, waits until a dashboard page is there. */
async function logIn(page, user, password, project, { refused = false } = {}) {
  await page.goto(`${B}/`);
  await page.fill('input[name=user]', user);
  await page.fill('input[name=password]', password);
  if (project) await page.fill('input[name=project]', project);
  await page.click('button[type=submit]');
  if (!refused) await page.waitForURL((u) => u.pathname.startsWith('/dashboard/'));
}

/** A token of our own, to ask the API what the page should show. */
async function token(user, password, project) {
  const r = await fetch(`${B}/v3/auth/tokens?nocatalog=true`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: user, password, domain: { name: 'vpnmon' } } } }, scope: { project: { name: project } } } }),
  });
  assert.equal(r.status, 201);
  return { token: r.headers.get('x-subject-token'), project: (await r.json()).token.project.id };
}

async function ces(auth, conn, metric, filter, period, from, to) {
  const q = new URLSearchParams({ namespace: 'SYS.VPN', metric_name: metric, 'dim.0': `evpn_connection_id,${conn}`, filter, period, from, to });
  const r = await fetch(`${B}/V1.0/${auth.project}/metric-data?${q}`, { headers: { 'X-Auth-Token': auth.token } });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()).datapoints.map((d) => d[filter]);
}

/** What the legend should say for the range the page shows, computed here from the CES API. */
async function expectedLegend(auth, conn, { from, to, period }) {
  const avg = await ces(auth, conn, 'link_average_latency', 'average', period, from, to);
  const min = period === '1' ? avg : await ces(auth, conn, 'link_average_latency', 'min', period, from, to);
  const max = await ces(auth, conn, 'link_max_latency', 'max', period, from, to);
  const loss = await ces(auth, conn, 'link_packet_loss_rate', 'average', period, from, to);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(avg.length > 0 && loss.length > 0, `the range ${from}-${to} at ${period} has data`);
  return {
    avg: mean(avg).toFixed(3),
    min: Math.min(...min).toFixed(3),
    max: Math.max(...max).toFixed(3),
    now: avg[avg.length - 1].toFixed(3),
    loss: mean(loss).toFixed(2),
  };
}

async function legend(page) {
  const out = {};
  for (const k of ['avg', 'min', 'max', 'now', 'loss']) out[k] = (await page.textContent(`[data-stat="${k}"]`)).trim();
  return out;
}

async function chartSpan(page) {
  return page.$eval('#chart', (e) => ({ from: e.dataset.from, to: e.dataset.to, period: e.dataset.period }));
}

/** Runs `act` and waits until the chart has been drawn again. */
async function rerender(page, act) {
  const n = Number((await page.getAttribute('body', 'data-renders')) || 0);
  const t0 = Date.now();
  await act();
  // (document.body is null for a moment while a click navigates)
  await page.waitForFunction((k) => Number(document.body?.dataset.renders || 0) > k, n);
  return Date.now() - t0;
}

async function shot(page, name) {
  if (!fx.screenshots) return;
  mkdirSync(fx.screenshots, { recursive: true });
  await page.screenshot({ path: join(fx.screenshots, name), fullPage: true });
}

test('a wrong password is refused with the message in role=alert', async () => {
  const page = await newPage();
  await logIn(page, fx.user, 'not-the-password', fx.project, { refused: true });
  const alert = page.locator('[role=alert]');
  await alert.waitFor({ state: 'visible' });
  assert.match(await alert.textContent(), /username or password is wrong/);
  assert.equal(new URL(page.url()).pathname, '/');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, 'no session');
  expected(/401 \(Unauthorized\)/, '/');
  await page.context().close();
});

test('the overview lists this project\'s monitors with their link state, sorts and filters', async () => {
  const page = await newPage();
  await logIn(page, fx.user, fx.password, fx.project);
  await page.waitForURL(`${B}/dashboard/**`);
  await page.waitForSelector('body[data-ready=true]');
  assert.ok(!page.url().includes(fx.password) && !(await page.evaluate(() => location.href)).includes('token'));
  const rows = await page.$$eval('tr[data-monitor-id]', (trs) =>
    trs.map((t) => ({ id: t.dataset.monitorId, link: t.dataset.link, status: t.dataset.status, alarm: t.dataset.alarm, name: t.querySelector('a').textContent })),
  );
  const want = [...fx.monitors].sort((a, b) => a.name.localeCompare(b.name));
  assert.deepEqual(rows, want.map((m) => ({ id: m.id, link: m.link, status: m.status, alarm: m.alarm, name: m.name })), 'sorted by connection name');
  const oslo = fx.monitors.find((m) => m.link === 'unknown').id;
  const berlin = fx.monitors.find((m) => m.alarm === 'alarm').id;
  assert.equal(await page.textContent(`tr[data-monitor-id="${berlin}"] [data-col=alarm] .badge`), 'alarm');
  assert.equal(await page.getAttribute(`tr[data-monitor-id="${berlin}"] [data-col=alarm] .badge`, 'title'), '1 rule, 1 enabled, 1 in alarm');
  assert.equal(await page.textContent(`tr[data-monitor-id="${oslo}"] [data-col=alarm]`), '–', 'no rule, no badge');
  assert.equal(await page.textContent(`tr[data-monitor-id="${oslo}"] [data-col=link]`), 'not probed');
  assert.match(await page.getAttribute(`tr[data-monitor-id="${oslo}"] [data-col=link] .badge`, 'title'), /outside the probe allowlist/);
  assert.equal(await page.textContent(`tr[data-monitor-id="${oslo}"] [data-col=loss]`), '–');
  assert.ok(!rows.some((r) => r.id === fx.other.monitor), 'another project\'s monitor is absent');
  assert.equal(await page.locator('svg.spark').count(), fx.monitors.length, 'a sparkline per row');

  await page.click('button[data-top=loss]');
  await page.waitForFunction((id) => document.querySelector('tbody tr')?.dataset.monitorId === id, fx.top_loss);
  assert.equal(await page.textContent(`tr[data-monitor-id="${fx.top_loss}"] [data-col=loss]`), '100.00');
  assert.equal(await page.getAttribute('th[data-sort=loss]', 'aria-sort'), 'descending');
  assert.equal(await page.getAttribute('button[data-top=loss]', 'aria-pressed'), 'true');

  await page.click('button[data-top=""]');
  await page.fill('#search', 'lagos');
  await page.waitForFunction(() => document.querySelectorAll('tr[data-monitor-id]').length === 1);
  assert.equal(await page.getAttribute('tr[data-monitor-id]', 'data-monitor-id'), fx.lossy);
  await page.fill('#search', '');
  await page.waitForFunction((n) => document.querySelectorAll('tr[data-monitor-id]').length === n, fx.monitors.length);
  await shot(page, 'dashboard-overview.png');
  await page.context().close();
});

test('the detail page shows the CES numbers for the range, changes range, zooms and shows the gap', async () => {
  const auth = await token(fx.user, fx.password, fx.project);
  const page = await newPage();
  await logIn(page, fx.user, fx.password, fx.project);
  await page.waitForSelector('body[data-ready=true]');
  await rerender(page, () => page.click(`tr[data-monitor-id="${fx.lossy}"] a`));
  assert.equal(new URL(page.url()).pathname, `/dashboard/monitors/${fx.lossy}`);
  assert.equal(await page.locator('#chart canvas').count(), 1, 'a canvas chart');
  const conn = (await (await fetch(`${B}/v5/${auth.project}/connection-monitors/${fx.lossy}`, { headers: { 'X-Auth-Token': auth.token } })).json()).connection_monitor.vpn_connection_id;

  // 3 h (the default): raw windows; the missing 20 minutes are a gap.
  let span = await chartSpan(page);
  assert.equal(span.period, '1');
  assert.ok(Number(span.to) - Number(span.from) === 3 * 60 * MIN);
  assert.deepEqual(await legend(page), await expectedLegend(auth, conn, span));
  const gaps = await page.$$eval('[data-gap]', (ls) => ls.map((l) => ({ from: Number(l.dataset.from), to: Number(l.dataset.to) })));
  assert.ok(
    gaps.some((g) => Math.abs(g.from - fx.gap.from) <= 30e3 && Math.abs(g.to - fx.gap.to) <= 30e3),
    `a gap near ${JSON.stringify(fx.gap)} in ${JSON.stringify(gaps)}`,
  );
  assert.equal(gaps.length, 1, 'and no other: the link-down period has windows (100 % loss)');
  assert.equal(await page.locator('#bands li').count(), 8, 'SmokePing bands for 10 pings');

  // All four SmokePing ranges side by side, each at its own period; a
  // click on one shows it above.
  await page.waitForSelector('#ranges[data-ready=true]');
  assert.equal(await page.locator('#ranges canvas').count(), 4);
  assert.deepEqual(await page.$$eval('#ranges figure', (fs) => fs.map((f) => [f.dataset.strip, f.dataset.period])), [
    ['3h', '1'], ['30h', '300'], ['10d', '1200'], ['360d', '86400'],
  ]);
  await shot(page, 'dashboard-detail.png');

  // 30 h: 5-minute rollups.
  await rerender(page, () => page.click('#ranges figure[data-strip="30h"]'));
  span = await chartSpan(page);
  assert.equal(span.period, '300');
  assert.equal(await page.getAttribute('button[data-range="30h"]', 'aria-pressed'), 'true');
  assert.deepEqual(await legend(page), await expectedLegend(auth, conn, span));

  // Drag-to-zoom over the middle of the chart: a narrower range at a finer period.
  const box = await page.locator('#chart .u-over').boundingBox();
  await rerender(page, async () => {
    await page.mouse.move(box.x + box.width * 0.85, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2, { steps: 5 });
    await page.mouse.move(box.x + box.width * 0.95, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
  });
  const zoomed = await chartSpan(page);
  assert.ok(Number(zoomed.from) > Number(span.from) && Number(zoomed.to) < Number(span.to), `${JSON.stringify(zoomed)} inside ${JSON.stringify(span)}`);
  assert.equal(zoomed.period, '1', 'a zoomed 3 h window is raw');
  assert.deepEqual(await legend(page), await expectedLegend(auth, conn, zoomed));
  assert.equal(await page.isEnabled('#reset'), true);
  await rerender(page, () => page.click('#reset'));
  assert.equal((await chartSpan(page)).period, '300', 'reset goes back to 30 h');

  // UTC toggle re-labels without refetching.
  await rerender(page, () => page.check('#utc'));
  assert.match(await page.textContent('#resolution'), /UTC$/);

  // Custom from/to.
  const to = Number(span.to) - 60 * MIN, from = to - 120 * MIN;
  const iso = (ms) => new Date(ms).toISOString().slice(0, 16);
  await page.fill('#from', iso(from));
  await page.fill('#to', iso(to));
  await rerender(page, () => page.click('#custom button[type=submit]'));
  const custom = await chartSpan(page);
  assert.equal(Number(custom.from), Math.floor(from / MIN) * MIN);
  assert.equal(custom.period, '1');
  assert.deepEqual(await legend(page), await expectedLegend(auth, conn, custom));
  await page.context().close();
});

async function cesGet(auth, rest) {
  const r = await fetch(`${B}/V1.0/${auth.project}${rest}`, { headers: { 'X-Auth-Token': auth.token } });
  return { status: r.status, body: await r.json().catch(() => ({})) };
}

/** Every history record of `rule` in [from, to], from the CES API. */
async function historyOf(auth, rule, from, to) {
  const out = [];
  for (let start = 0; ; start += 100) {
    const q = new URLSearchParams({ alarm_id: rule, from, to, limit: 100, start });
    const { status, body } = await cesGet(auth, `/alarm-histories?${q}`);
    assert.equal(status, 200);
    out.push(...body.alarm_histories);
    if (start + 100 >= body.meta_data.total) return out;
  }
}

test('the detail page draws the rules\' thresholds, shades the alarm period and lists the CES history', async () => {
  const auth = await token(fx.user, fx.password, fx.project);
  const page = await newPage();
  await logIn(page, fx.user, fx.password, fx.project);
  await page.waitForSelector('body[data-ready=true]');
  await rerender(page, () => page.goto(`${B}/dashboard/monitors/${fx.lossy}`));
  const rules = await page.$$eval('#alarm-rules tr[data-alarm-id]', (trs) => trs.map((t) => [t.dataset.alarmId, t.dataset.state, t.dataset.enabled]));
  assert.deepEqual(rules, [[fx.rules.lagos_loss, 'ok', 'true'], [fx.rules.lagos_rtt, 'ok', 'true']]);
  const span = await chartSpan(page);
  assert.equal(await page.getAttribute('#chart', 'data-thresholds'), '2', 'a line per rule: loss on its axis, RTT on its');

  // The one alarm period is the lagos-loss rule's alarm record to its ok record, as CES has them.
  const hist = await historyOf(auth, fx.rules.lagos_loss, span.from, span.to);
  const alarm = hist.find((h) => h.alarm_status === 'alarm');
  const ok = hist.filter((h) => h.alarm_status === 'ok' && h.trigger_time > alarm.trigger_time).at(-1);
  assert.ok(Math.abs(alarm.trigger_time - (fx.lagos_down.from + 20e3)) <= 20e3, `alarm at the 3rd lost window: ${alarm.trigger_time} vs ${fx.lagos_down.from}`);
  assert.ok(Math.abs(ok.trigger_time - fx.lagos_down.to) <= 20e3, `ok at the first clean window: ${ok.trigger_time} vs ${fx.lagos_down.to}`);
  const periods = await page.$$eval('[data-alarm-period]', (ls) => ls.map((l) => [l.dataset.alarmId, Number(l.dataset.from), Number(l.dataset.to), l.dataset.open]));
  assert.deepEqual(periods, [[fx.rules.lagos_loss, alarm.trigger_time, ok.trigger_time, 'false']]);
  assert.equal(await page.getAttribute('#chart', 'data-alarm-periods'), '1');

  // The history list: every change of both rules in the range, newest first.
  const all = [...hist, ...(await historyOf(auth, fx.rules.lagos_rtt, span.from, span.to))].sort((a, b) => b.trigger_time - a.trigger_time);
  const listed = await page.$$eval('[data-history]', (trs) => trs.map((t) => [t.dataset.alarmId, t.dataset.status, Number(t.dataset.time)]));
  assert.deepEqual(listed, all.map((h) => [h.alarm_id, h.alarm_status, h.trigger_time]));

  // A range that starts inside the alarm: shaded from the range's start (the state before it is read too).
  const from = alarm.trigger_time + 60e3, to = ok.trigger_time + 30 * MIN;
  await page.goto(`${B}/dashboard/`); // (a new document: a hash change alone loads nothing)
  await rerender(page, () => page.goto(`${B}/dashboard/monitors/${fx.lossy}#from=${from}&to=${to}`));
  const inside = await page.$$eval('[data-alarm-period]', (ls) => ls.map((l) => [Number(l.dataset.from), Number(l.dataset.to)]));
  assert.deepEqual(inside, [[from, ok.trigger_time]]);

  // "New rule on this connection" opens the rules page with the connection chosen.
  await page.click('#new-rule');
  await page.waitForSelector('body[data-ready=true]');
  const lagosConn = fx.monitors.find((m) => m.id === fx.lossy).connection;
  assert.equal(await page.inputValue('select[name=connection]'), lagosConn);
  await page.context().close();
});

test('the rules page lists, disables, enables, creates and deletes rules through the CES API', async () => {
  const auth = await token(fx.user, fx.password, fx.project);
  const page = await newPage();
  await logIn(page, fx.user, fx.password, fx.project);
  await page.waitForSelector('body[data-ready=true]');
  await page.click('header a[href="/dashboard/alarms"]');
  await page.waitForURL(`${B}/dashboard/alarms`);
  await page.waitForSelector('body[data-ready=true]');
  const rows = async () => page.$$eval('#rules tr[data-alarm-id]', (trs) => trs.map((t) => [t.dataset.alarmId, t.dataset.state, t.dataset.enabled]));
  const listed = await rows();
  const api = (await cesGet(auth, '/alarms?order=desc')).body.metric_alarms;
  assert.deepEqual(listed, api.map((r) => [r.alarm_id, r.alarm_state, String(r.alarm_enabled)]), 'what CES lists, newest first');
  assert.deepEqual(new Set(listed.map((r) => r[0])), new Set(Object.values(fx.rules)));
  assert.equal(listed.find((r) => r[0] === fx.rules.berlin_loss)[1], 'alarm');
  assert.match(await page.textContent(`tr[data-alarm-id="${fx.rules.berlin_loss}"]`), /office-berlin.*link_packet_loss_rate average >= 50 % for 2 raw windows/);

  // Disable, then enable again.
  const loads = async () => Number(await page.getAttribute('body', 'data-loads'));
  const rtt = `tr[data-alarm-id="${fx.rules.lagos_rtt}"]`;
  let n = await loads();
  await page.click(`${rtt} button[data-action=toggle]`);
  await page.waitForFunction((k) => Number(document.body.dataset.loads) > k, n);
  assert.equal(await page.getAttribute(rtt, 'data-enabled'), 'false');
  assert.equal((await cesGet(auth, `/alarms/${fx.rules.lagos_rtt}`)).body.metric_alarms[0].alarm_enabled, false);
  n = await loads();
  await page.click(`${rtt} button[data-action=toggle]`);
  await page.waitForFunction((k) => Number(document.body.dataset.loads) > k, n);
  assert.equal((await cesGet(auth, `/alarms/${fx.rules.lagos_rtt}`)).body.metric_alarms[0].alarm_enabled, true);

  // A name CES refuses: its message, in role=alert.
  const frankfurt = fx.monitors.find((m) => m.name === 'dc-frankfurt').connection;
  await page.selectOption('select[name=connection]', frankfurt);
  await page.fill('input[name=alarm_name]', 'bad name!');
  await page.click('#new-rule button[type=submit]');
  await page.locator('#form-error').waitFor({ state: 'visible' });
  assert.match(await page.textContent('#form-error'), /alarm_name: "bad name!" must be 1-128 letters/);
  expected(/400 \(Bad Request\)/, '/dashboard/alarms');

  // A new rule on dc-frankfurt: max RTT > 40 ms over 5 minutes, notifying the topic.
  await page.fill('input[name=alarm_name]', 'frankfurt-rtt');
  await page.selectOption('select[name=metric_name]', 'link_max_latency');
  await page.selectOption('select[name=filter]', 'max');
  await page.selectOption('select[name=comparison_operator]', '>');
  await page.fill('input[name=value]', '40');
  await page.selectOption('select[name=period]', '300');
  await page.fill('input[name=count]', '1');
  await page.selectOption('select[name=topic]', fx.topic);
  await page.click('#new-rule button[type=submit]');
  await page.waitForSelector('#new-rule[data-created]');
  const id = await page.getAttribute('#new-rule', 'data-created');
  assert.equal(await page.isHidden('#form-error'), true);
  await page.waitForSelector(`tr.fresh[data-alarm-id="${id}"]`);
  const made = (await cesGet(auth, `/alarms/${id}`)).body.metric_alarms[0];
  assert.equal(made.alarm_name, 'frankfurt-rtt');
  assert.deepEqual(made.metric.dimensions, [{ name: 'evpn_connection_id', value: frankfurt }]);
  assert.equal(made.metric.metric_name, 'link_max_latency');
  assert.deepEqual(
    [made.condition.comparison_operator, made.condition.filter, made.condition.value, made.condition.unit, made.condition.period, made.condition.count],
    ['>', 'max', 40, 'ms', 300, 1],
  );
  assert.deepEqual(made.alarm_actions, [{ type: 'notification', notificationList: [fx.topic] }]);

  // Deleted after a confirmation.
  page.once('dialog', (d) => d.accept());
  n = await loads();
  await page.click(`tr[data-alarm-id="${id}"] button[data-action=delete]`);
  await page.waitForFunction((k) => Number(document.body.dataset.loads) > k, n);
  assert.equal(await page.locator(`tr[data-alarm-id="${id}"]`).count(), 0);
  assert.equal((await cesGet(auth, `/alarms/${id}`)).status, 404);
  await shot(page, 'dashboard-alarms.png');
  await page.context().close();
});

test('360 days of rollups load in under a second', async () => {
  const auth = await token(fx.user, fx.password, fx.project);
  const page = await newPage();
  await logIn(page, fx.user, fx.password, fx.project);
  await page.waitForSelector('body[data-ready=true]');
  await rerender(page, () => page.goto(`${B}/dashboard/monitors/${fx.year}`));
  await page.waitForSelector('#ranges[data-ready=true]'); // the page is idle
  const ms = await rerender(page, () => page.click('button[data-range="360d"]'));
  const span = await chartSpan(page);
  assert.equal(span.period, '86400');
  const conn = (await (await fetch(`${B}/v5/${auth.project}/connection-monitors/${fx.year}`, { headers: { 'X-Auth-Token': auth.token } })).json()).connection_monitor.vpn_connection_id;
  assert.deepEqual(await legend(page), await expectedLegend(auth, conn, span));
  const points = Number(await page.getAttribute('#chart', 'data-points'));
  assert.ok(points >= 300, `${points} daily buckets`);
  console.log(`360 d: ${points} datapoints drawn in ${ms} ms`);
  assert.ok(ms < 1000, `360 d took ${ms} ms`);
  await page.context().close();
});

test('another project sees only its own monitors, and none of ours by id', async () => {
  const page = await newPage();
  await logIn(page, fx.other.user, fx.other.password, fx.other.project);
  await page.waitForSelector('body[data-ready=true]');
  const ids = await page.$$eval('tr[data-monitor-id]', (trs) => trs.map((t) => t.dataset.monitorId));
  assert.deepEqual(ids, [fx.other.monitor]);
  await page.goto(`${B}/dashboard/monitors/${fx.lossy}`);
  const alert = page.locator('[role=alert]');
  await alert.waitFor({ state: 'visible' });
  assert.match(await alert.textContent(), /not found/);
  expected(/404 \(Not Found\)/, `/dashboard/monitors/${fx.lossy}`);
  await page.context().close();
});

test('logging out revokes the token and forgets it; no URL ever carried it', async () => {
  const page = await newPage();
  await logIn(page, fx.user, fx.password, fx.project);
  await page.waitForSelector('body[data-ready=true]');
  const { token, projectId } = await page.evaluate(() => JSON.parse(sessionStorage.getItem('vpnmon.session')));
  assert.ok(token.length > 20);
  const tokenUrls = urls.filter((u) => u.includes(token) || decodeURIComponent(u).includes(token));
  assert.deepEqual(tokenUrls, []);
  await page.click('#logout');
  await page.waitForURL(`${B}/`);
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
  const r = await fetch(`${B}/vpnmon/${projectId}/overview`, { headers: { 'X-Auth-Token': token } });
  assert.equal(r.status, 401, 'the token is revoked');
  await page.context().close();
});

test('a page without a session goes to the login page, and back after logging in', async () => {
  const page = await newPage();
  await page.goto(`${B}/dashboard/monitors/${fx.lossy}`);
  await page.waitForURL(`${B}/?next=**`);
  await page.fill('input[name=user]', fx.user);
  await page.fill('input[name=password]', fx.password);
  await page.click('button[type=submit]');
  await page.waitForURL(`${B}/dashboard/monitors/${fx.lossy}`);
  await page.waitForSelector('body[data-ready=true]');
  await page.context().close();
});

test('no JavaScript errors on any page', () => {
  assert.deepEqual(problems, []);
});
