// The login page: IAM user/password, then on to the page asked for.
import { login, getSession } from './session.mjs';

const form = document.getElementById('login');
const error = document.getElementById('error');

// Only a path of this dashboard may follow the login (no open redirect).
function next() {
  const n = new URLSearchParams(location.search).get('next') || '';
  return /^\/dashboard(\/|$)/.test(n) && !n.startsWith('//') ? n : '/dashboard/';
}

if (getSession()) location.replace(next());

form.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  error.hidden = true;
  const f = new FormData(form);
  const button = form.querySelector('button');
  button.disabled = true;
  try {
    await login({
      user: f.get('user').trim(),
      password: f.get('password'),
      project: (f.get('project') || '').trim(),
      domain: (f.get('domain') || '').trim(),
    });
    location.assign(next());
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
    form.elements.password.select();
  } finally {
    button.disabled = false;
  }
});
