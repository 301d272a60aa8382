// The "already taken part" page: the browser that made the start (its key is in localStorage)
// but lost the reply resumes its own participant; any other browser keeps the refusal.

import { api, startKey, untilAnswered } from "./api.js";

const root = document.getElementById("resume");
const slug = root.dataset.slug;
const key = startKey(slug, false);

if (key) {
  const body = { ...JSON.parse(root.dataset.start), consent: true, start_key: key };
  const res = await untilAnswered(() =>
    api(`/studies/${encodeURIComponent(slug)}/participants`, { method: "POST", body }),
  );
  if (res.status === 200 || res.status === 201) {
    window.location.assign(`/s/${encodeURIComponent(slug)}/task`);
  }
}
