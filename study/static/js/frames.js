// Timing on display frames: requestAnimationFrame timestamps share performance.now()'s clock.

export function nextFrame() {
  return new Promise((resolve) => requestAnimationFrame(resolve));
}

// Wait until `ms` have passed since `t0` (a frame timestamp), ending on a frame; returns the
// timestamp of the frame on which the wait ended. Half a frame of slack so that a 500 ms
// exposure at 60 Hz lasts 30 frames, not 31.
export async function waitFrames(t0, ms) {
  let frame = 1000 / 60;
  let last = t0;
  for (;;) {
    const ts = await nextFrame();
    frame = Math.min(frame, Math.max(ts - last, 1));
    last = ts;
    if (ts - t0 >= ms - frame / 2) return ts;
  }
}
