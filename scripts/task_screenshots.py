"""Screenshots of the ClickMe task page for the docs: one 16-px digit drawing shown with the
display setting `pixels` (the stored image enlarged nearest-neighbour) and `smooth` (study/display.py).

    .venv/bin/python scripts/task_screenshots.py [--out docs/figures/study]

Builds a throwaway study app (SQLite in a temp folder, stimuli from the browser tests' helper
`digit_manifest`), serves it on 127.0.0.1 and drives Debian's Chromium (/usr/bin/chromium)
through consent and instructions to the trial (one real drawing), where it paints three bubbles.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from pathlib import Path

from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "study")]

from study_helpers import digit_manifest, manifest_study  # noqa: E402

from study import create_app  # noqa: E402
from study.migrate import upgrade  # noqa: E402

CHROMIUM = "/usr/bin/chromium"


def shoot(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        url = f"sqlite:///{work / 'study.db'}"
        upgrade(url)
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "screenshots", "STIMULI_ROOT": str(work / "store"),
                          "FEEDBACK_CLASSIFIER": None})
        manifest = digit_manifest(work / "stimuli", classes=("digit4_rot270",), per_class=1, practice=0)
        lines = manifest.read_text().splitlines(keepends=True)
        manifest.write_text(lines[0] + "".join(x for x in lines[1:] if x.startswith("real-")))  # one drawing
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM,
                                            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
                for mode in ("pixels", "smooth"):
                    slug = manifest_study(app, manifest, {
                        "task": "clickme", "title": "Which parts of the drawing matter?",
                        "trials_per_participant": 1, "n_practice": 0, "n_catch": 0, "min_clicks": 3,
                        "click_budget": 30, "bubble_radius": 0.08, "display": {"mode": mode}}, f"shot-{mode}")
                    page = browser.new_page(viewport={"width": 760, "height": 720})
                    page.goto(f"{base}/s/{slug}?PROLIFIC_PID=SHOT{mode}")
                    page.click("#agree")
                    page.locator("#begin").click()
                    canvas = page.locator(".cm-canvas")
                    canvas.wait_for(state="visible")
                    page.wait_for_timeout(300)
                    box = canvas.bounding_box()
                    for fx, fy in ((0.42, 0.3), (0.5, 0.45), (0.62, 0.55)):
                        page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
                    path = out / f"clickme_{mode}.png"
                    page.locator("#stage").screenshot(path=str(path))
                    written.append(path)
                    page.close()
                browser.close()
        finally:
            server.shutdown()
            app.extensions["sqlalchemy_engine"].dispose()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "figures" / "study")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in shoot(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
