// ClickMe trial: paint the parts of the image that matter. A click or tap places a bubble, a drag
// (mouse, pen or finger: pointer events; the canvas takes no scroll gestures, study.css) paints
// a stroke of bubbles; points are (x, y) in [0, 1] image coordinates with t in ms since
// the image appeared. Budget counter, undo, submit after the minimum, keyboard control and
// optional live feedback from a classifier that sees only the revealed pixels.

import { api } from "./api.js";
import { t } from "./i18n.js";

const KEY_STEP = 0.03;

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

export async function runClickMe(stage, trial, img, { token, practice }) {
  const s = trial.settings;
  // The page's own width (a phone's 360-430 px less the margins) bounds the canvas.
  const room = document.documentElement.clientWidth - 32;
  const size = Math.max(200, Math.min(512, room, window.innerHeight - 220));
  const dpr = window.devicePixelRatio || 1;

  stage.replaceChildren();
  // The class in words (class_text); without one the page names no class.
  const prompt = el("p", "cm-prompt", t("Paint over the parts of the drawing that tell you what it is"));
  if (trial.class_text) prompt.append(": ", el("strong", "cm-label", trial.class_text));
  else prompt.append(".");
  const canvas = el("canvas", s.pixelated ? "cm-canvas pixelated" : "cm-canvas");
  canvas.width = Math.round(size * dpr);
  canvas.height = Math.round(size * dpr);
  canvas.style.width = `${size}px`;
  canvas.style.height = `${size}px`;
  canvas.tabIndex = 0;
  canvas.setAttribute("aria-label", t("image to paint on; arrow keys move, space paints"));
  const bar = el("div", "cm-bar");
  const count = el("span", "cm-count");
  // The key of each button in a hint that touch screens hide (study.css).
  const undo = el("button", "cm-undo", t("Undo"));
  undo.append(el("span", "key-hint", " (Z)"));
  undo.type = "button";
  const submit = el("button", "cm-submit primary", t("Submit"));
  submit.append(el("span", "key-hint", " (Enter)"));
  submit.type = "button";
  bar.append(count, undo, submit);
  const feedback = el("p", "cm-feedback");
  feedback.hidden = true;
  stage.append(prompt, canvas, bar, feedback);

  const ctx = canvas.getContext("2d");
  const radius = s.bubble_radius; // fraction of the image width
  const points = [];
  let stroke = -1;
  let drawing = false;
  let cursor = { x: 0.5, y: 0.5 };
  let keyboardUsed = false;
  let t0 = null;

  function draw() {
    const W = canvas.width;
    ctx.imageSmoothingEnabled = !s.pixelated;
    ctx.clearRect(0, 0, W, W);
    ctx.drawImage(img, 0, 0, W, W);
    ctx.fillStyle = "rgba(255, 200, 0, 0.45)";
    for (const p of points) {
      ctx.beginPath();
      ctx.arc(p.x * W, p.y * W, radius * W, 0, 2 * Math.PI);
      ctx.fill();
    }
    if (keyboardUsed && document.activeElement === canvas) {
      ctx.strokeStyle = "#e00";
      ctx.lineWidth = 2 * dpr;
      ctx.beginPath();
      ctx.arc(cursor.x * W, cursor.y * W, radius * W, 0, 2 * Math.PI);
      ctx.stroke();
    }
    const left = s.click_budget - points.length;
    count.textContent = t("{placed} placed, {left} left", { placed: points.length, left }) +
      (points.length < s.min_clicks ? t(" (at least {min} needed)", { min: s.min_clicks }) : "");
    submit.disabled = points.length < s.min_clicks;
    undo.disabled = points.length === 0;
  }

  function add(x, y, newStroke) {
    if (points.length >= s.click_budget) return false;
    if (newStroke) stroke += 1;
    const cx = Math.min(1, Math.max(0, x));
    const cy = Math.min(1, Math.max(0, y));
    points.push({ x: cx, y: cy, t: Math.max(0, performance.now() - t0), stroke });
    return true;
  }

  function where(e) {
    const r = canvas.getBoundingClientRect();
    return { x: (e.clientX - r.left) / r.width, y: (e.clientY - r.top) / r.height };
  }

  let pending = null;
  async function askClassifier() {
    if (!s.feedback || !points.length) return;
    const mine = Symbol("request");
    pending = mine;
    try {
      const res = await api("/participant/classify", {
        method: "POST",
        body: { trial_id: trial.id, clicks: points },
        token,
      });
      if (pending !== mine || !res.ok) return;
      const { class_text: said, probability, correct } = res.data;
      const pct = `(${Math.round(probability * 100)}%)`;
      if (correct) {
        feedback.textContent = said
          ? t("The computer recognises it: {label} {pct}", { label: said, pct })
          : t("The computer recognises it {pct}", { pct });
      } else {
        feedback.textContent = said
          ? t("The computer thinks it is: {label} {pct}", { label: said, pct })
          : t("The computer thinks it is something else {pct}", { pct });
      }
      feedback.classList.toggle("good", correct);
      feedback.hidden = false;
    } catch {
      /* feedback is optional: a failed request changes nothing */
    }
  }

  function endStroke() {
    if (!drawing) return;
    drawing = false;
    askClassifier();
  }

  canvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0 || !e.isPrimary) return; // a second finger neither paints nor scrolls
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    drawing = true;
    const p = where(e);
    if (add(p.x, p.y, true)) draw();
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!drawing || !e.isPrimary) return;
    const p = where(e);
    const last = points[points.length - 1];
    // Space the points of a drag by half a bubble radius so a stroke paints a continuous band.
    if (last && Math.hypot(p.x - last.x, p.y - last.y) < radius / 2) return;
    if (add(p.x, p.y, false)) draw();
  });
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);
  canvas.addEventListener("focus", draw);
  canvas.addEventListener("blur", draw);

  function undoStroke() {
    if (!points.length) return;
    const last = points[points.length - 1].stroke;
    while (points.length && points[points.length - 1].stroke === last) points.pop();
    stroke = points.length ? points[points.length - 1].stroke : -1;
    draw();
    askClassifier();
  }
  undo.addEventListener("click", undoStroke);

  const result = new Promise((resolve) => {
    const finish = () => {
      if (points.length < s.min_clicks) return;
      window.removeEventListener("keydown", onKey);
      resolve({ clicks: points.map((p) => ({ ...p })), rt_ms: performance.now() - t0 });
    };
    submit.addEventListener("click", finish);
    const onKey = (e) => {
      const k = e.key;
      const step = e.shiftKey ? KEY_STEP * 3 : KEY_STEP;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (moves[k]) {
        e.preventDefault();
        keyboardUsed = true;
        cursor = {
          x: Math.min(1, Math.max(0, cursor.x + moves[k][0])),
          y: Math.min(1, Math.max(0, cursor.y + moves[k][1])),
        };
        if (document.activeElement !== canvas) canvas.focus();
        draw();
      } else if (k === " ") {
        e.preventDefault();
        keyboardUsed = true;
        if (add(cursor.x, cursor.y, true)) draw();
        askClassifier();
      } else if (k === "z" || k === "Z" || k === "Backspace") {
        e.preventDefault();
        undoStroke();
      } else if (k === "Enter") {
        e.preventDefault();
        finish();
      }
    };
    window.addEventListener("keydown", onKey);
  });

  // The image appears on this frame: click times count from its timestamp.
  t0 = await new Promise((resolve) =>
    requestAnimationFrame((ts) => {
      draw();
      resolve(ts);
    }),
  );
  const out = await result;
  if (practice) {
    feedback.textContent = t("Well done: you painted {n} points.", { n: out.clicks.length });
    feedback.hidden = false;
  }
  return out;
}
