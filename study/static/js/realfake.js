// Real-or-fake trial: fixation, the image for the exposure time, a mask, then F / J (or the
// buttons) and an optional confidence rating. The reaction time runs from the frame on which
// the image appeared (its requestAnimationFrame timestamp) to the key press (performance.now()).

import { nextFrame, waitFrames } from "./frames.js";
import { t } from "./i18n.js";

const KEYS = { f: "real", j: "fake" };

// A key's name after a button's label, which touch screens hide (study.css).
function hint(text) {
  const span = document.createElement("span");
  span.className = "key-hint";
  span.textContent = text;
  return span;
}

function maskCanvas(size) {
  const c = document.createElement("canvas");
  const cells = 16;
  c.width = cells;
  c.height = cells;
  const ctx = c.getContext("2d");
  for (let y = 0; y < cells; y++) {
    for (let x = 0; x < cells; x++) {
      ctx.fillStyle = Math.random() < 0.5 ? "#000" : "#fff";
      ctx.fillRect(x, y, 1, 1);
    }
  }
  c.className = "rf-mask pixelated";
  c.style.width = `${size}px`;
  c.style.height = `${size}px`;
  return c;
}

function build(stage, img, size, pixelated) {
  stage.replaceChildren();
  const screen = document.createElement("div");
  screen.className = "rf-screen";
  screen.style.width = `${size}px`;
  screen.style.height = `${size}px`;
  const fixation = document.createElement("div");
  fixation.className = "fixation";
  fixation.textContent = "+";
  img.className = pixelated ? "rf-image pixelated" : "rf-image";
  img.alt = "";
  img.style.width = `${size}px`;
  img.style.height = `${size}px`;
  img.hidden = true;
  const mask = maskCanvas(size);
  mask.hidden = true;
  screen.append(fixation, img, mask);

  const answer = document.createElement("div");
  answer.className = "rf-answer";
  answer.hidden = true;
  const q = document.createElement("p");
  q.textContent = t("Was the image a real drawing or AI-generated?");
  const real = document.createElement("button");
  real.type = "button";
  real.dataset.answer = "real";
  real.textContent = t("Real");
  real.append(hint(" (F)"));
  const fake = document.createElement("button");
  fake.type = "button";
  fake.dataset.answer = "fake";
  fake.textContent = t("AI-generated");
  fake.append(hint(" (J)"));
  answer.append(q, real, fake);
  stage.append(screen, answer);
  return { fixation, mask, answer };
}

function askConfidence(stage, lo, hi) {
  return new Promise((resolve) => {
    const box = document.createElement("div");
    box.className = "rf-confidence";
    const p = document.createElement("p");
    p.textContent = t("How sure are you? ({lo} = guessing, {hi} = certain", { lo, hi });
    p.append(hint(t("; keys {lo}-{hi}", { lo, hi })), ")");
    box.append(p);
    const done = (v) => {
      window.removeEventListener("keydown", onKey);
      box.remove();
      resolve(v);
    };
    for (let v = lo; v <= hi; v++) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = String(v);
      b.dataset.confidence = String(v);
      b.addEventListener("click", () => done(v));
      box.append(b);
    }
    const onKey = (e) => {
      const v = Number(e.key);
      if (Number.isInteger(v) && v >= lo && v <= hi) done(v);
    };
    window.addEventListener("keydown", onKey);
    stage.append(box);
  });
}

export async function runRealFake(stage, trial, img) {
  const s = trial.settings;
  const size = Math.min(384, document.documentElement.clientWidth - 32);
  const { fixation, mask, answer } = build(stage, img, size, s.pixelated);

  const t_fix = await nextFrame();
  await waitFrames(t_fix, s.fixation_ms);

  let t0 = null;
  let shownFor = null;
  let answered = null;
  const answerPromise = new Promise((resolve) => {
    const finish = (value) => {
      if (t0 === null || answered) return;
      answered = { answer: value, rt_ms: performance.now() - t0 };
      window.removeEventListener("keydown", onKey);
      resolve(answered);
    };
    const onKey = (e) => {
      const value = KEYS[e.key.toLowerCase()];
      if (value && !e.repeat) finish(value);
    };
    window.addEventListener("keydown", onKey);
    answer.addEventListener("click", (e) => {
      const value = e.target.dataset && e.target.dataset.answer;
      if (value) finish(value);
    });
  });

  // Show the image inside a frame callback; that frame's timestamp is the onset.
  t0 = await new Promise((resolve) =>
    requestAnimationFrame((ts) => {
      fixation.hidden = true;
      img.hidden = false;
      resolve(ts);
    }),
  );

  if (trial.exposure_ms !== null && trial.exposure_ms !== undefined) {
    const tOff = await Promise.race([waitFrames(t0, trial.exposure_ms), answerPromise.then(() => null)]);
    const tHide = tOff === null ? performance.now() : tOff;
    img.hidden = true;
    shownFor = tHide - t0;
    if (!answered) {
      mask.hidden = false;
      await Promise.race([waitFrames(tHide, s.mask_ms), answerPromise]);
      mask.hidden = true;
    }
  }
  answer.hidden = false;
  const result = await answerPromise;
  answer.hidden = true;
  img.hidden = true;
  const out = { answer: result.answer, rt_ms: Math.max(0, result.rt_ms) };
  if (shownFor !== null) out.exposure_ms = shownFor;
  if (s.confidence) out.confidence = await askConfidence(stage, s.confidence_min, s.confidence_max);
  return out;
}
