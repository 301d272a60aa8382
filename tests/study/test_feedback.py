"""ClickMe feedback: the revealed image (hand-worked) and the endpoint with a real, tiny
classifier from models.classifiers.feedback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from study.feedback import reveal_mask, revealed_image

H = "X-Participant-Token"


def test_reveal_mask_hand_worked() -> None:
    # 8x8 image, a point at the centre (4, 4) px, radius 0.25 * 8 = 2 px: the pixel centres at
    # offsets (+-0.5, +-0.5) and (+-0.5, +-1.5) / (+-1.5, +-0.5) are inside, 4 + 8 = 12 pixels.
    mask = reveal_mask(8, 8, [(0.5, 0.5)], 0.25)
    assert mask.sum() == 12
    assert mask[3:5, 2:6].all() and mask[2:6, 3:5].all() and not mask[2, 2]
    assert reveal_mask(8, 8, [], 0.25).sum() == 0
    corner = reveal_mask(8, 8, [(0.0, 0.0)], 0.1)  # 0.8 px: only the corner pixel's centre
    assert corner.sum() == 1 and corner[0, 0]


def test_revealed_image_keeps_only_revealed_pixels() -> None:
    img = np.linspace(0.1, 0.9, 64, dtype=np.float32).reshape(8, 8)
    out = revealed_image(img, [(0.5, 0.5), (0.06, 0.06)], 0.25, fill=0.0)
    mask = reveal_mask(8, 8, [(0.5, 0.5), (0.06, 0.06)], 0.25)
    assert out.dtype == np.float32 and out.shape == (8, 8)
    np.testing.assert_array_equal(out[mask], img[mask])
    assert (out[~mask] == 0).all()


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory: pytest.TempPathFactory) -> str:
    torch = pytest.importorskip("torch")
    from models.classifiers.feedback import FeedbackClassifier

    gen = torch.Generator().manual_seed(0)
    images = torch.rand(24, 1, 16, 16, generator=gen) * 2 - 1
    labels = torch.arange(24) % 3
    clf = FeedbackClassifier.train(images, labels, ["digit0", "digit1", "digit2"], epochs=1,
                                   device="cpu")
    return str(clf.save(tmp_path_factory.mktemp("clf") / "feedback.pt"))


def test_a_study_may_not_name_a_checkpoint_outside_the_checkpoint_folder(
    app: Flask, client: FlaskClient, make_study, tiny_classifier
) -> None:
    """Loading a checkpoint unpickles it, so a researcher's setting is confined to
    FEEDBACK_CLASSIFIER_DIR (the default data/ folder does not hold the tmp checkpoint)."""
    slug = make_study(task="clickme", n_main=2, n_practice=0, n_catch=0, image_size=16,
                      settings={"feedback_classifier": tiny_classifier})
    token = client.post(f"/api/v1/studies/{slug}/participants", json={"consent": True}).get_json()["token"]
    trial = client.get("/api/v1/participant/trial", headers={H: token}).get_json()["trial"]
    assert trial["settings"]["feedback"] is False
    res = client.post("/api/v1/participant/classify", json={"trial_id": trial["id"], "clicks": []},
                      headers={H: token})
    assert res.status_code == 404


def test_classify_endpoint(app: Flask, client: FlaskClient, make_study, tiny_classifier) -> None:
    app.config["FEEDBACK_CLASSIFIER_DIR"] = str(Path(tiny_classifier).parent)
    slug = make_study(task="clickme", n_main=3, n_practice=0, n_catch=0, image_size=16,
                      settings={"feedback_classifier": tiny_classifier})
    token = client.post(f"/api/v1/studies/{slug}/participants", json={"consent": True}).get_json()["token"]
    trial = client.get("/api/v1/participant/trial", headers={H: token}).get_json()["trial"]
    assert trial["settings"]["feedback"] is True
    clicks = [{"x": 0.5, "y": 0.5, "t": 10}, {"x": 0.2, "y": 0.3, "t": 20}]
    res = client.post("/api/v1/participant/classify", json={"trial_id": trial["id"], "clicks": clicks},
                      headers={H: token})
    assert res.status_code == 200, res.get_json()
    out = res.get_json()
    # The classifier's class comes back in words, as the study's stimuli of that class say it.
    assert out["class_text"] in {"the digit 0", "the digit 1", "the digit 2"} and 0 <= out["probability"] <= 1
    assert "label" not in out
    assert out["correct"] == (out["class_text"] == trial["class_text"])
    res = client.post("/api/v1/participant/classify", headers={H: token},
                      json={"trial_id": trial["id"], "clicks": [{"x": 2, "y": 0, "t": 0}]})
    assert res.status_code == 400 and res.get_json()["error"]["field"] == "clicks[0].x"


def test_classify_without_classifier(client: FlaskClient, make_study) -> None:
    slug = make_study(task="clickme", n_main=2, n_practice=0, n_catch=0,
                      settings={"feedback_classifier": "data/checkpoints/does-not-exist.pt"})
    token = client.post(f"/api/v1/studies/{slug}/participants", json={"consent": True}).get_json()["token"]
    trial = client.get("/api/v1/participant/trial", headers={H: token}).get_json()["trial"]
    assert trial["settings"]["feedback"] is False  # the page hides feedback
    res = client.post("/api/v1/participant/classify", json={"trial_id": trial["id"], "clicks": []},
                      headers={H: token})
    assert res.status_code == 404 and "no feedback classifier" in res.get_json()["error"]["message"]
    rf = make_study(task="realfake", n_main=2, n_practice=0, n_catch=0)
    token = client.post(f"/api/v1/studies/{rf}/participants", json={"consent": True}).get_json()["token"]
    trial = client.get("/api/v1/participant/trial", headers={H: token}).get_json()["trial"]
    res = client.post("/api/v1/participant/classify", json={"trial_id": trial["id"]}, headers={H: token})
    assert res.status_code == 400 and res.get_json()["error"]["field"] == "trial_id"
