// The consent page: "I agree" starts the participant through the API (with the browser's
// window and screen size for the study's device check), then opens the task.

import { api, startKey, untilAnswered } from "./api.js";
import { t } from "./i18n.js";

const root = document.getElementById("consent");
const button = document.getElementById("agree");
const status = document.getElementById("consent-status");
const slug = root.dataset.slug;
const preview = root.dataset.preview === "1";

function say(text) {
  status.textContent = text;
  status.hidden = !text;
}

button.addEventListener("click", async () => {
  button.disabled = true;
  const body = {
    ...JSON.parse(root.dataset.start),
    consent: true,
    start_key: startKey(slug, true),
    // The server's device rule decides with this report and the user agent.
    screen: {
      viewport_width: Math.round(window.innerWidth),
      viewport_height: Math.round(window.innerHeight),
      screen_width: Math.round(window.screen.width),
      screen_height: Math.round(window.screen.height),
      touch_points: navigator.maxTouchPoints || 0,
    },
  };
  if (preview) body.preview = true;
  const res = await untilAnswered(
    () => api(`/studies/${encodeURIComponent(slug)}/participants`, { method: "POST", body }),
    (waiting) => say(waiting ? t("Connecting to the server…") : ""),
  );
  if (res.status === 201 || res.status === 200) {
    window.location.assign(`/s/${encodeURIComponent(slug)}/task${preview ? "?preview=1" : ""}`);
    return;
  }
  if (res.status === 403 && !preview) {
    // Screened out by the device check: the study's page says why and where to go back to.
    window.location.assign(`/s/${encodeURIComponent(slug)}`);
    return;
  }
  // The API's message is English: the participant reads it after a sentence in their language.
  const detail = res.data && res.data.error ? res.data.error.message : `HTTP ${res.status}`;
  say(t("Could not start ({detail}).", { detail }));
});
