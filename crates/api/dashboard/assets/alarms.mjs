// The alarm rules page: the project's Cloud Eye rules through the CES API
// itself (`GET/POST /V1.0/{project_id}/alarms`, `PUT .../action`,
// `DELETE .../{alarm_id}`), so what it shows and does is what any SDK
// client sees and does; errors are the API's own messages.
import { api, requireSession, header } from './session.mjs';
import * as L from './logic.mjs';
import { el } from './dom.mjs';

const s = await requireSession();
header(s);

const $ = (id) => document.getElementById(id);
const PAGE = 50;
const st = { start: null, trail: [], fresh: null };
const connections = new Map(); // id -> {name, monitor}
const wanted = new URLSearchParams(location.search).get('connection');

function showError(e, where = 'error') {
  $(where).textContent = e.message;
  $(where).hidden = false;
}

const cell = (...kids) => el('td', {}, ...kids);

function button(text, action, onClick) {
  const b = el('button', { type: 'button', 'data-action': action }, text);
  b.addEventListener('click', onClick);
  return b;
}

/** Every connection of the project (paged through the VPN API), for names, links and the form. */
async function loadConnections() {
  let marker = null;
  for (;;) {
    const q = new URLSearchParams({ limit: '2000' });
    if (marker) q.set('marker', marker);
    const j = await api(`/v5/{project_id}/vpn-connection?${q}`);
    for (const c of j.vpn_connections) connections.set(c.id, { name: c.name });
    marker = j.page_info?.next_marker;
    if (!marker || !j.vpn_connections.length) break;
  }
  const sel = document.querySelector('select[name=connection]');
  const sorted = [...connections].sort((a, b) => a[1].name.localeCompare(b[1].name));
  sel.replaceChildren(...sorted.map(([id, c]) => Object.assign(document.createElement('option'), { value: id, textContent: `${c.name} (${id})` })));
  if (wanted && connections.has(wanted)) sel.value = wanted;
}

async function loadTopics() {
  const j = await api('/v2/{project_id}/notifications/topics?limit=100');
  const sel = document.querySelector('select[name=topic]');
  sel.append(...j.topics.map((t) => Object.assign(document.createElement('option'), { value: t.topic_urn, textContent: t.display_name ? `${t.name} (${t.display_name})` : t.name })));
}

/** To the connection's monitor page (looked up when clicked: the rule knows only its connection). */
async function openConnection(id) {
  try {
    const j = await api(`/v5/{project_id}/connection-monitors?vpn_connection_id=${encodeURIComponent(id)}`);
    const m = j.connection_monitors[0];
    if (!m) throw new Error('this connection has no monitor');
    location.assign(`/dashboard/monitors/${m.id}`);
  } catch (e) {
    showError(e);
  }
}

function topicsOf(rule) {
  const urns = [...new Set([...rule.alarm_actions, ...rule.ok_actions].flatMap((a) => a.notificationList))];
  return urns.length ? urns.map((u) => u.split(':').pop()).join(', ') : '–';
}

function row(r) {
  const tr = document.createElement('tr');
  Object.assign(tr.dataset, { alarmId: r.alarm_id, state: r.alarm_state, enabled: String(r.alarm_enabled) });
  if (r.alarm_id === st.fresh) tr.className = 'fresh';
  const conn = r.metric.dimensions[0]?.value;
  const link = Object.assign(document.createElement('a'), { href: '#', textContent: connections.get(conn)?.name || conn });
  link.addEventListener('click', (e) => {
    e.preventDefault();
    openConnection(conn);
  });
  const name = document.createElement('div');
  name.append(r.alarm_name);
  if (r.alarm_description) name.append(el('div', { class: 'id' }, r.alarm_description));
  name.append(el('div', { class: 'id' }, r.alarm_id));
  const badge = el('span', { class: `badge ${L.stateClass(r.alarm_state, r.alarm_enabled)}` }, r.alarm_state);
  tr.append(
    cell(name),
    cell(link),
    cell(L.ruleText(r)),
    cell(String(r.alarm_level)),
    cell(badge),
    cell(L.fmtTime(r.update_time, false)),
    cell(r.alarm_action_enabled ? topicsOf(r) : 'off'),
    cell(r.alarm_enabled ? 'yes' : 'no'),
    el(
      'td',
      { class: 'actions' },
      button(r.alarm_enabled ? 'Disable' : 'Enable', 'toggle', () => act(() => api(`/V1.0/{project_id}/alarms/${r.alarm_id}/action`, { method: 'PUT', body: { alarm_enabled: !r.alarm_enabled } }))),
      ' ',
      button('Delete', 'delete', () => {
        if (confirm(`Delete the rule ${r.alarm_name}? Its history stays.`)) act(() => api(`/V1.0/{project_id}/alarms/${r.alarm_id}`, { method: 'DELETE' }));
      }),
    ),
  );
  return tr;
}

async function act(call) {
  try {
    await call();
    await load();
  } catch (e) {
    showError(e);
  }
}

let seq = 0;
async function load() {
  const my = ++seq;
  const q = new URLSearchParams({ limit: String(PAGE), order: 'desc' });
  if (st.start) q.set('start', st.start);
  const j = await api(`/V1.0/{project_id}/alarms?${q}`);
  if (my !== seq) return;
  $('error').hidden = true;
  const body = $('rules').tBodies[0];
  body.replaceChildren(...j.metric_alarms.map(row));
  if (!j.metric_alarms.length) {
    const tr = document.createElement('tr');
    tr.append(el('td', { colSpan: 9, class: 'hint' }, 'No alarm rule yet: create one below.'));
    body.append(tr);
  }
  const shown = st.trail.length * PAGE;
  $('count').textContent = `${j.meta_data.total ? shown + 1 : 0}–${shown + j.metric_alarms.length} of ${j.meta_data.total}`;
  $('first').disabled = !st.start;
  $('next').disabled = shown + j.metric_alarms.length >= j.meta_data.total;
  $('next').dataset.marker = j.meta_data.marker;
  document.body.dataset.ready = 'true';
  document.body.dataset.loads = String(Number(document.body.dataset.loads || 0) + 1);
}

$('next').addEventListener('click', () => {
  st.trail.push(st.start);
  st.start = $('next').dataset.marker;
  load().catch(showError);
});
$('first').addEventListener('click', () => {
  Object.assign(st, { start: null, trail: [] });
  load().catch(showError);
});

const form = $('new-rule');
const unitOf = (metric) => (L.axisOf(metric) === 'loss' ? '%' : 'ms');
function showUnit() {
  $('unit').textContent = `(${unitOf(form.elements.metric_name.value)})`;
}
form.elements.metric_name.addEventListener('change', showUnit);
showUnit();

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  $('form-error').hidden = true;
  const f = Object.fromEntries(new FormData(form));
  const metric = f.metric_name;
  const actions = f.topic ? [{ type: 'notification', notificationList: [f.topic] }] : [];
  const body = {
    alarm_name: f.alarm_name.trim(),
    metric: {
      namespace: 'SYS.VPN',
      metric_name: metric,
      dimensions: [{ name: metric.startsWith('link_') ? 'evpn_connection_id' : 'vpn_connection_id', value: f.connection }],
    },
    condition: {
      comparison_operator: f.comparison_operator,
      count: Number(f.count),
      filter: f.filter,
      period: Number(f.period),
      value: Number(f.value),
      unit: unitOf(metric),
      suppress_duration: Number(f.suppress_duration),
    },
    alarm_enabled: true,
    alarm_action_enabled: actions.length > 0,
    alarm_level: Number(f.alarm_level),
    alarm_actions: actions,
    ok_actions: actions,
  };
  if (f.alarm_description.trim()) body.alarm_description = f.alarm_description.trim();
  const submit = form.querySelector('button[type=submit]');
  submit.disabled = true;
  try {
    const j = await api('/V1.0/{project_id}/alarms', { method: 'POST', body });
    st.fresh = j.alarm_id;
    Object.assign(st, { start: null, trail: [] });
    form.dataset.created = j.alarm_id;
    await load();
  } catch (e) {
    showError(e, 'form-error');
  } finally {
    submit.disabled = false;
  }
});

Promise.all([loadConnections(), loadTopics()])
  .then(load)
  .then(() => {
    if (location.hash === '#new') form.scrollIntoView();
  })
  .catch(showError);
