// Calls to the participant JSON API, and retrying them until the server answers.

export const TOKEN_HEADER = "X-Participant-Token";

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function newUUID() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  // Pages served over plain http on another host have no randomUUID: build a v4 UUID by hand.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// This browser's key for its start call in a study, kept in localStorage across retries and
// reloads, so that a start whose reply was lost resumes instead of being refused.
export function startKey(slug, create = false) {
  const name = `dp-start-key:${slug}`;
  try {
    let key = window.localStorage.getItem(name);
    if (!key && create) {
      key = newUUID();
      window.localStorage.setItem(name, key);
    }
    return key;
  } catch {
    return create ? newUUID() : null;
  }
}

// One request; resolves {status, ok, data} or throws on a network failure.
export async function api(path, { method = "GET", body, token } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (token) headers[TOKEN_HEADER] = token;
  const res = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
    cache: "no-store",
  });
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  return { status: res.status, ok: res.ok, data };
}

// Worth trying again: no answer at all, a server error, or "too many requests".
export function transient(status) {
  return status === 0 || status === 408 || status === 429 || status >= 500;
}

export function backoff(attempt, base = 300, cap = 8000) {
  const ms = Math.min(cap, base * 2 ** attempt);
  return ms / 2 + Math.random() * (ms / 2);
}

// Retry a call until the server gives a non-transient answer (network drops included).
export async function untilAnswered(call, onWait = () => {}) {
  for (let attempt = 0; ; attempt++) {
    let res;
    try {
      res = await call();
    } catch {
      res = { status: 0, ok: false, data: null };
    }
    if (!transient(res.status)) {
      onWait(false);
      return res;
    }
    onWait(true);
    await sleep(backoff(attempt));
  }
}
