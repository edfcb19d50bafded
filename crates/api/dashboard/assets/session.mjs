// The login session and API calls. The token lives in sessionStorage only
// (gone when the tab closes, never in a URL) and goes out as X-Auth-Token.

const KEY = 'vpnmon.session';

/** The stored session {token, projectId, projectName, user, expiresAt}, or null. */
export function getSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(KEY) || 'null');
    if (!s || !s.token || !s.projectId) return null;
    if (s.expiresAt && Date.parse(s.expiresAt) <= Date.now()) return null;
    return s;
  } catch {
    return null;
  }
}

export function setSession(s) {
  sessionStorage.setItem(KEY, JSON.stringify(s));
}

export function clearSession() {
  sessionStorage.removeItem(KEY);
}

/** To the login page, coming back to this page afterwards. */
export function toLogin() {
  const next = location.pathname + location.hash;
  location.replace('/?next=' + encodeURIComponent(next));
}

/**
 * The session, or off to the login page: then the promise never settles,
 * so a page that awaits it at the top of its module stops there quietly.
 */
export function requireSession() {
  const s = getSession();
  if (!s) {
    toLogin();
    return new Promise(() => {});
  }
  return Promise.resolve(s);
}

/** An API error with the Huawei error body's code and message. */
export class ApiError extends Error {
  constructor(status, code, msg) {
    super(msg || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

/** Logs in: POST /v3/auth/tokens (password, project scope). */
export async function login({ user, password, project, domain }) {
  const body = {
    auth: {
      identity: {
        methods: ['password'],
        password: { user: { name: user, password, domain: { name: domain || 'vpnmon' } } },
      },
      scope: { project: { name: project || 'local-1' } },
    },
  };
  const r = await fetch('/v3/auth/tokens?nocatalog=true', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  const j = await r.json().catch(() => ({}));
  // IAM answers 401 in Keystone's body: {"error": {"code", "message", "title"}}.
  if (r.status !== 201) throw new ApiError(r.status, j.error_code ?? j.error?.code, j.error_msg || j.error?.message || `login failed (HTTP ${r.status})`);
  const token = r.headers.get('X-Subject-Token');
  if (!token) throw new ApiError(r.status, '', 'the server sent no token');
  const s = {
    token,
    projectId: j.token.project.id,
    projectName: j.token.project.name,
    user: j.token.user.name,
    expiresAt: j.token.expires_at,
  };
  setSession(s);
  return s;
}

/** Logs out: revokes the token, forgets the session. */
export async function logout() {
  const s = getSession();
  clearSession();
  if (s) {
    await fetch('/v3/auth/tokens', {
      method: 'DELETE',
      headers: { 'X-Auth-Token': s.token, 'X-Subject-Token': s.token },
    }).catch(() => {});
  }
  location.replace('/');
}

/**
 * GET/POST `path` (with `{project_id}` filled in) as the session's user;
 * JSON in and out. A 401 (expired or revoked token) goes to the login page.
 */
export async function api(path, { method = 'GET', body } = {}) {
  const s = await requireSession();
  const r = await fetch(path.replace('{project_id}', encodeURIComponent(s.projectId)), {
    method,
    headers: {
      'X-Auth-Token': s.token,
      ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}),
    },
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  const j = await r.json().catch(() => ({}));
  if (r.status === 401) {
    clearSession();
    toLogin();
  }
  // VPN and CES bodies say error_code/error_msg, SMN's code/message.
  if (!r.ok) throw new ApiError(r.status, j.error_code ?? j.code, j.error_msg ?? j.message);
  return j;
}

/** Fills the page header's user/project and logout button. */
export function header(s) {
  const who = document.getElementById('who');
  if (who) who.textContent = `${s.user} · project ${s.projectName}`;
  const out = document.getElementById('logout');
  if (out) out.addEventListener('click', () => logout());
}
