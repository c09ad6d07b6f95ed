// Talking to the tpro server: JSON requests whose errors keep the server's field and type,
// so callers can show a message next to the field it is about.
'use strict';

class ApiError extends Error {
  constructor(status, body) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.status = status;
    this.type = e.type || '';
    this.field = e.field || '';
  }
}

async function api(method, path, body) {
  const init = { method, headers: {} };
  if (method !== 'GET') {  // the server takes JSON bodies only (no cross-site form posts)
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body === undefined ? {} : body);
  }
  const res = await fetch(path, init);
  let data = null;
  try { data = await res.json(); } catch (_) { /* an empty or non-JSON body */ }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

// "1:02:03" like the console progress line; "-:--:--" when unknown.
function formatHms(s) {
  if (!(s >= 0) || !isFinite(s)) return '-:--:--';
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60, sec = s % 60;
  return `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}`;
}
