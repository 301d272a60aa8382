// The task page: instructions, practice with feedback, the trials, then the debrief with the
// completion code. Progress lives on the server, so a reload resumes at the current trial;
// answers go through the localStorage outbox, so a network drop or a reload loses nothing.

import { api, TOKEN_HEADER, untilAnswered } from "./api.js";
import { captureEvents } from "./events.js";
import { Outbox } from "./queue.js";
import { runClickMe } from "./clickme.js";
import { runRealFake } from "./realfake.js";
import { t } from "./i18n.js";

const app = document.getElementById("app");
const { slug, token, task } = app.dataset;
const $ = (id) => document.getElementById(id);
const netNotice = $("net");

const setOffline = (waiting) => {
  netNotice.hidden = !waiting;
};
const outbox = new Outbox(`dp-outbox:${slug}:${token}`, setOffline);
let currentTrialId = null;
const events = captureEvents(outbox, token, () => currentTrialId);

function show(section) {
  for (const id of ["instructions", "interlude", "stage", "debrief"]) $(id).hidden = id !== section;
}

function waitClick(button, key = "Enter") {
  return new Promise((resolve) => {
    const done = () => {
      button.removeEventListener("click", done);
      window.removeEventListener("keydown", onKey);
      resolve();
    };
    const onKey = (e) => {
      if (e.key === key) done();
    };
    button.addEventListener("click", done);
    window.addEventListener("keydown", onKey);
    button.focus();
  });
}

async function interlude(title, text) {
  $("interlude-title").textContent = title;
  $("interlude-text").textContent = text;
  show("interlude");
  await waitClick($("interlude-next"));
  $("interlude").hidden = true; // answered: never leave a stale Continue on screen while the next trial loads
}

async function fetchTrial() {
  const res = await untilAnswered(() => api("/participant/trial", { token }), setOffline);
  if (!res.ok) throw new Error(res.data ? res.data.error.message : `status ${res.status}`);
  return res.data;
}

async function loadImage(trial) {
  const res = await untilAnswered(async () => {
    const r = await fetch(trial.image_url, { headers: { [TOKEN_HEADER]: token }, cache: "no-store" });
    return { status: r.status, ok: r.ok, blob: r.ok ? await r.blob() : null };
  }, setOffline);
  if (!res.ok) throw new Error(`image: status ${res.status}`);
  const img = new Image();
  img.src = URL.createObjectURL(res.blob);
  await img.decode();
  return img;
}

function practiceFeedback(trial, answer) {
  if (!trial.answer_key) return null;
  const right = answer === trial.answer_key;
  const title = right ? t("Correct") : t("Not quite");
  if (trial.answer_key === "fake") {
    return { title, text: right ? t("Correct: it was AI-generated.") : t("Not quite: it was AI-generated.") };
  }
  return { title, text: right ? t("Correct: it was a real drawing.") : t("Not quite: it was a real drawing.") };
}

async function debrief() {
  show("debrief");
  currentTrialId = null;
  events.flush();
  await outbox.drain();
  const res = await untilAnswered(() => api("/participant/complete", { method: "POST", token }), setOffline);
  $("debrief-wait").hidden = true;
  $("debrief-done").hidden = false;
  if (!res.ok) {
    const detail = res.data ? res.data.error.message : `HTTP ${res.status}`;
    $("completion-code").textContent = t("Your answers could not be saved ({detail}). Please reload the page.", { detail });
    return;
  }
  $("completion-code").textContent =
    res.data.completion_code ?? t("none: please return the study on your platform");
  if (res.data.redirect_url) {
    const link = $("return-link");
    link.href = res.data.redirect_url;
    link.textContent = app.dataset.platform === "mturk" ? t("Submit the HIT on MTurk") : t("Return to Prolific");
    link.hidden = false;
  }
}

async function main() {
  $("fullscreen").addEventListener("click", () => {
    if (document.fullscreenElement) document.exitFullscreen();
    else document.documentElement.requestFullscreen().catch(() => {});
  });
  await outbox.drain(); // answers left over from before a reload go first
  let next = await fetchTrial();
  if (next.done) return debrief();
  if (next.trial.index === 0) {
    show("instructions");
    await waitClick($("begin"));
  }
  let previousKind = null;
  for (;;) {
    const trial = next.trial;
    currentTrialId = trial.id;
    if (previousKind === "practice" && trial.kind !== "practice") {
      await interlude(
        t("Practice is over"),
        t("The real trials start now; you will no longer be told whether you were right."),
      );
    }
    previousKind = trial.kind;
    $("progress").textContent =
      trial.kind === "practice"
        ? t("Practice {n}", { n: trial.index + 1 })
        : t("Trial {n} of {total}", { n: trial.index + 1, total: trial.n_trials });
    const img = await loadImage(trial);
    show("stage");
    const stage = $("stage");
    stage.dataset.trialId = String(trial.id);
    stage.dataset.trialIndex = String(trial.index);
    const practice = trial.kind === "practice";
    const result =
      task === "clickme"
        ? await runClickMe(stage, trial, img, { token, practice })
        : await runRealFake(stage, trial, img);
    URL.revokeObjectURL(img.src);
    outbox.add("/participant/responses", { ...result, trial_id: trial.id, client_sent_at: Date.now() }, token);
    const sending = outbox.drain();
    const said = practice ? practiceFeedback(trial, result.answer) : null;
    if (said) await interlude(said.title, said.text);
    await sending;
    next = await fetchTrial();
    if (next.done) break;
  }
  await debrief();
}

app.dataset.state = "running";
main().then(
  () => {
    app.dataset.state = "finished";
  },
  (err) => {
    app.dataset.state = "error";
    console.error(err);
    netNotice.textContent = t("Something went wrong: {message}. Please reload the page.", { message: err.message });
    netNotice.hidden = false;
  },
);
