import crypto from 'node:crypto';
import type { HttpResult } from '../platform/http/api';

/**
 * The enrolment page an enrolment link opens: set a password, scan the TOTP QR code, confirm
 * a code, keep the recovery codes. Self-contained (no external assets), with a strict content
 * security policy naming its one inline script by hash. The console replaces it in time.
 */
const SCRIPT = `
const token = new URLSearchParams(location.hash.slice(1)).get('token') || '';
const $ = (id) => document.getElementById(id);
const show = (id) => { for (const s of document.querySelectorAll('section')) s.hidden = s.id !== id; };
const post = async (path, body) => {
  const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(json.reason || 'request failed (' + res.status + ')');
  return json;
};
let ticket = '';
$('first').hidden = !token;
$('password-form').onsubmit = async (e) => {
  e.preventDefault();
  $('error').textContent = '';
  const body = { token, password: $('password').value };
  for (const f of ['email', 'name', 'employeeId']) if ($(f).value) body[f] = $(f).value;
  try {
    const out = await post('/v1/auth/enrol', body);
    ticket = out.ticket;
    $('qr').src = out.totp.qr;
    $('secret').textContent = out.totp.secret;
    show('mfa');
  } catch (err) { $('error').textContent = err.message; }
};
$('mfa-form').onsubmit = async (e) => {
  e.preventDefault();
  $('error').textContent = '';
  try {
    const out = await post('/v1/auth/mfa', { ticket, code: $('code').value });
    $('codes').textContent = (out.recoveryCodes || []).join('\\n');
    show('done');
  } catch (err) { $('error').textContent = err.message; }
};
`;

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Vigil · enrol</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#1d2630}
h1{font-size:1.4rem}label{display:block;margin:.8rem 0 .2rem}input{width:100%;padding:.5rem;font:inherit}
button{margin-top:1rem;padding:.6rem 1.2rem;font:inherit;background:#1f5fa8;color:#fff;border:0;border-radius:4px}
#error{color:#b00020;min-height:1.5rem}pre{background:#f3f5f7;padding:1rem}small{color:#5b6670}
</style></head><body>
<h1>Vigil account enrolment</h1><p id="error" role="alert"></p>
<section id="password"><form id="password-form">
<div id="first"><small>First security officer? Give your details; otherwise leave them empty.</small>
<label for="name">Full name</label><input id="name" autocomplete="name">
<label for="email">Work email</label><input id="email" type="email" autocomplete="email">
<label for="employeeId">Employee id</label><input id="employeeId"></div>
<label for="password">New password (12 characters or more, not a common one)</label>
<input id="password" type="password" autocomplete="new-password" minlength="12" required>
<button>Set password</button></form></section>
<section id="mfa" hidden><p>Scan this code with your authenticator app, then enter the 6-digit code it shows.</p>
<img id="qr" alt="TOTP QR code" width="220" height="220"><p><small>Or enter the key: <code id="secret"></code></small></p>
<form id="mfa-form"><label for="code">Code</label>
<input id="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" required>
<button>Confirm</button></form></section>
<section id="done" hidden><p>You are enrolled and signed in. Keep these recovery codes somewhere safe; each works once.</p>
<pre id="codes"></pre></section>
<script>${SCRIPT}</script></body></html>`;

const SCRIPT_HASH = crypto.hash('sha256', SCRIPT, 'base64');

export function enrolmentPage(): HttpResult {
  return {
    status: 200,
    body: PAGE,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': `default-src 'none'; script-src 'sha256-${SCRIPT_HASH}'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`,
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
      'x-content-type-options': 'nosniff',
    },
  };
}
