"""What a participant's browser receives for a stimulus (study/display.py): the stored PNG,
or its smooth rendering, the same for real drawings and model samples."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from flask import Flask
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from study.display import displayed_file, png_bytes, render
from study.settings import DisplaySettings
from study.tables import Condition, Participant, Stimulus, Trial

H = "X-Participant-Token"
S = 256


def _drawing() -> tuple[np.ndarray, Image.Image]:
    """A ring with a tail drawn at 256 px (True = ink) and its 16-px binarised version, black
    ink on white, as the samplers store drawings."""
    yy, xx = np.mgrid[0:S, 0:S] + 0.5
    r = np.hypot(xx - S * 0.5, yy - S * 0.45)
    truth = ((r > S * 0.18) & (r < S * 0.32)) | ((abs(xx - yy * 0.5 - S * 0.3) < S * 0.05) & (yy > S * 0.6))
    small = np.asarray(Image.fromarray((255 * ~truth).astype(np.uint8)).resize((16, 16), Image.Resampling.BOX))
    return truth, Image.fromarray(np.where(small >= 128, 255, 0).astype(np.uint8))


def test_smooth_rendering_draws_the_shape_closer_than_blocks() -> None:
    truth, stored = _drawing()
    blocks = np.asarray(stored.resize((S, S), Image.Resampling.NEAREST)) < 128
    shown = render(stored, DisplaySettings(size=S))
    ink = np.asarray(shown) < 128
    assert shown.size == (S, S) and set(np.unique(np.asarray(shown)).tolist()) == {0, 255}
    # Against the drawing it came from: about half the wrong pixels of the 4-pixel blocks
    # (measured 2.7% against 5.2%), and the same amount of ink.
    assert np.mean(ink != truth) < 0.6 * np.mean(blocks != truth)
    assert abs(ink.mean() - truth.mean()) < 0.01
    # Blocks repeat each of 16 rows 16 times; the rendered outline changes from row to row.
    assert len({tuple(r) for r in blocks}) <= 16 and len({tuple(r) for r in ink}) > 48


def test_pixels_mode_and_grey_images() -> None:
    _, stored = _drawing()
    assert np.array_equal(np.asarray(render(stored, DisplaySettings(mode="pixels"))), np.asarray(stored))
    grey = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4)
    shown = np.asarray(render(grey, DisplaySettings(size=64)))
    assert shown.shape == (64, 64) and len(np.unique(shown)) > 50  # grey levels are kept
    wide = render(Image.new("L", (20, 10), 255), DisplaySettings(size=100))
    assert wide.size == (100, 50)  # the longer side is `size`, the aspect kept
    big = render(Image.new("L", (300, 300), 255), DisplaySettings(size=100))
    assert big.size == (300, 300)  # never shrunk


def test_rendered_files_are_cached_by_content_and_settings(tmp_path: Path) -> None:
    _, stored = _drawing()
    source = tmp_path / "src.png"
    stored.save(source)
    sha = "ab" + "0" * 62
    assert displayed_file(source, sha, tmp_path / "root", DisplaySettings(mode="pixels")) == source
    first = displayed_file(source, sha, tmp_path / "root", DisplaySettings())
    assert first == tmp_path / "root" / "display" / "smooth-512-0.7" / "ab" / f"{sha}.png"
    assert first.read_bytes() == png_bytes(render(stored, DisplaySettings()))
    stamp = first.stat().st_mtime_ns
    assert displayed_file(source, sha, tmp_path / "root", DisplaySettings()).stat().st_mtime_ns == stamp
    other = displayed_file(source, sha, tmp_path / "root", DisplaySettings(size=128))
    assert other != first and Image.open(other).size == (128, 128)
    assert not list((tmp_path / "root").rglob("*.tmp"))


def test_served_images_follow_the_participants_condition(app: Flask, client: FlaskClient, make_study) -> None:
    """Condition B shows the stored pixels, A (the default) the smooth rendering; in each, the
    real drawings and the model samples go through the same rendering."""
    slug = make_study(task="realfake", n_main=4, n_practice=0, n_catch=0, image_size=16)
    engine = app.extensions["sqlalchemy_engine"]
    with Session(engine) as s:
        s.execute(update(Condition).where(Condition.name == "B").values(settings={"display": {"mode": "pixels"}}))
        s.commit()
    seen: dict[str, set[str]] = {"A": set(), "B": set()}
    for _ in range(2):
        token = client.post(f"/api/v1/studies/{slug}/participants", json={"consent": True}).get_json()["token"]
        pixelated = None
        with Session(engine) as s:
            p = s.scalar(select(Participant).where(Participant.token == token))
            condition = s.get(Condition, p.condition_id).name
            trials = s.scalars(select(Trial).where(Trial.participant_id == p.id).order_by(Trial.index)).all()
            stimuli = [s.get(Stimulus, t.stimulus_id) for t in trials]
        for index, (trial, stimulus) in enumerate(zip(trials, stimuli, strict=True)):
            got = client.get("/api/v1/participant/trial", headers={H: token}).get_json()["trial"]
            assert got["id"] == trial.id
            pixelated = got["settings"]["pixelated"]
            res = client.get(f"/api/v1/participant/trials/{trial.id}/image", headers={H: token})
            assert res.status_code == 200 and res.mimetype == "image/png"
            stored = Path(app.config["STIMULI_ROOT"]) / stimulus.path
            if condition == "B":
                assert res.data == stored.read_bytes()
            else:
                with Image.open(stored) as im:
                    assert res.data == png_bytes(render(im, DisplaySettings()))
                assert Image.open(io.BytesIO(res.data)).size == (512, 512)  # the default size
            seen[condition].add(stimulus.source)
            body = {"client_uuid": f"00000000-0000-4000-8000-{index:04d}{trial.id:08d}", "trial_id": trial.id,
                    "answer": "real", "rt_ms": 500}
            assert client.post("/api/v1/participant/responses", json=body, headers={H: token}).status_code == 201
        assert pixelated is (condition == "B")
    assert seen == {"A": {"real", "model"}, "B": {"real", "model"}}
