// Browser events that tell an analyst whether the participant looked away (blur, focus,
// visibility), resized the window or left full screen; batched into the outbox.

const FLUSH_MS = 2000;

export function captureEvents(outbox, token, currentTrialId) {
  let buffer = [];
  let timer = null;

  const flush = () => {
    timer = null;
    if (!buffer.length) return;
    outbox.add("/participant/events", { events: buffer }, token, { withUUID: false });
    buffer = [];
    outbox.drain();
  };
  const record = (kind, detail = {}) => {
    const ev = { kind, t: performance.now(), detail };
    const trialId = currentTrialId();
    if (trialId) ev.trial_id = trialId;
    buffer.push(ev);
    if (buffer.length >= 50) flush();
    else if (!timer) timer = setTimeout(flush, FLUSH_MS);
  };

  window.addEventListener("blur", () => record("blur"));
  window.addEventListener("focus", () => record("focus"));
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(
      () => record("resize", { width: window.innerWidth, height: window.innerHeight }),
      300,
    );
  });
  document.addEventListener("fullscreenchange", () =>
    record(document.fullscreenElement ? "fullscreen_enter" : "fullscreen_exit"),
  );
  document.addEventListener("visibilitychange", () =>
    record(document.visibilityState === "hidden" ? "visibility_hidden" : "visibility_visible"),
  );
  window.addEventListener("offline", () => record("offline"));
  window.addEventListener("online", () => record("online"));
  return { flush };
}
