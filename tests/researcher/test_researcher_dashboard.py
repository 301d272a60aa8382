"""The dashboard: create a study by upload, errors naming row/column, preview, status, progress."""

from __future__ import annotations

import io
import json
import zipfile

from researcher_helpers import create_demo_study, manifest_rows, populate, write_manifest_csv
from sqlalchemy import select

from study import db
from study.tables import Stimulus, Study


def _upload(client, data: bytes, filename: str, **fields):
    form = {"manifest": (io.BytesIO(data), filename), **fields}
    return client.post("/researcher/studies/new", data=form, content_type="multipart/form-data")


def _bundle(folder, rows) -> bytes:
    write_manifest_csv(folder, rows)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(folder / "manifest.csv", "bundle/manifest.csv")
        for r in rows:
            zf.write(folder / r["path"], f"bundle/{r['path']}")
    return buf.getvalue()


def test_create_study_from_a_zip_bundle(app, logged_in, tmp_path):
    rows = manifest_rows(tmp_path / "src", 2, 2, catch=1)
    settings = {"task": "realfake", "exposure_ms": 300, "conditions": ["a", "b"]}
    resp = _upload(logged_in, _bundle(tmp_path / "src", rows), "stimuli.zip",
                   title="Real or fake, digits", slug="rf-digits", settings=json.dumps(settings), live="y")
    assert resp.status_code == 302, resp.get_data(as_text=True)
    assert resp.headers["Location"].endswith("/researcher/studies/rf-digits")
    with app.app_context():
        study = db.session().scalar(select(Study).where(Study.slug == "rf-digits"))
        assert (study.title, study.status, study.settings["exposure_ms"]) == ("Real or fake, digits", "live", 300)
        assert sorted(c.name for c in study.conditions) == ["a", "b"]
        assert len(db.session().scalars(select(Stimulus).where(Stimulus.study_id == study.id)).all()) == 5
        assert study.created_by is not None
    page = logged_in.get("/researcher/studies/rf-digits").get_data(as_text=True)
    assert 'id="preview-link" href="/s/rf-digits?preview=1"' in page
    assert "Completion code" in page and "/researcher/studies/rf-digits/export/trials.csv" in page


def test_create_study_from_a_bare_manifest_and_server_folder(app, logged_in):
    from pathlib import Path

    root = Path(app.config["STIMULI_ROOT"])
    rows = manifest_rows(root / "batch1", 2, 2)
    data = write_manifest_csv(root / "batch1", rows).read_bytes()
    resp = _upload(logged_in, data, "manifest.csv", image_folder="batch1", settings='{"task": "clickme"}')
    assert resp.status_code == 302
    with app.app_context():
        assert db.session().scalar(select(Study.task)) == "clickme"
    resp = _upload(logged_in, data, "manifest.csv", image_folder="../../etc", slug="x2")
    assert resp.status_code == 400 and "image_folder" in resp.get_data(as_text=True)


def test_bad_manifest_shows_row_and_column(app, logged_in, tmp_path):
    rows = manifest_rows(tmp_path / "src", 2, 2)
    rows[2]["source"] = "dalle"
    rows[3]["guidance"] = "lots"
    resp = _upload(logged_in, _bundle(tmp_path / "src", rows), "b.zip")
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "row 3, column source: must be one of real, model" in page
    assert "row 4, column guidance: must be a number" in page
    resp = _upload(logged_in, b'{"stimuli": []}', "manifest.json", settings='{"exposure_ms": -5}')
    assert resp.status_code == 400 and "exposure_ms" in resp.get_data(as_text=True)
    resp = _upload(logged_in, b"hello", "notes.txt")
    assert "must be a .csv, .json or .zip file" in resp.get_data(as_text=True)
    resp = _upload(logged_in, b"PK not a zip", "x.zip")
    assert "not a valid zip archive" in resp.get_data(as_text=True)
    with app.app_context():
        assert db.session().scalar(select(Study)) is None


def test_zip_with_unsafe_paths_is_refused(logged_in):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../evil.csv", "x")
    resp = _upload(logged_in, buf.getvalue(), "evil.zip")
    assert resp.status_code == 400 and "unsafe path" in resp.get_data(as_text=True)


def test_pause_resume_close(app, logged_in, stimuli_dir):
    create_demo_study(app, stimuli_dir(2, 2))

    def status():
        with app.app_context():
            return db.session().scalar(select(Study.status))

    assert status() == "live"
    assert logged_in.post("/researcher/studies/demo/status", data={"status": "paused"}).status_code == 303
    assert status() == "paused"
    logged_in.post("/researcher/studies/demo/status", data={"status": "live"})
    assert status() == "live"
    logged_in.post("/researcher/studies/demo/status", data={"status": "closed"})
    assert status() == "closed"
    resp = logged_in.post("/researcher/studies/demo/status", data={"status": "live"}, follow_redirects=True)
    assert "a closed study cannot become live" in resp.get_data(as_text=True)
    assert status() == "closed"
    logged_in.post("/researcher/studies/demo/status", data={"status": "deleted"})
    assert status() == "closed"


def test_index_and_progress_json_show_live_counts(app, logged_in, stimuli_dir):
    sid = create_demo_study(app, stimuli_dir(2, 2))
    populate(app, sid, 4, 5)
    page = logged_in.get("/researcher/").get_data(as_text=True)
    assert 'data-slug="demo"' in page and 'data-k="responses">20<' in page
    data = logged_in.get("/researcher/progress.json").get_json()
    (row,) = data["studies"]
    assert (row["slug"], row["started"], row["completed"], row["responses"]) == ("demo", 4, 1, 20)
    one = logged_in.get("/researcher/studies/demo/progress.json").get_json()
    assert one["responses"] == 20 and one["median_rt_ms"] > 0
    assert logged_in.get("/researcher/studies/nope").status_code == 404


def test_pages_have_no_inline_code_for_the_csp(app, logged_in, stimuli_dir):
    create_demo_study(app, stimuli_dir(1, 1))
    for url in ("/researcher/", "/researcher/studies/demo", "/researcher/studies/new"):
        resp = logged_in.get(url)
        page = resp.get_data(as_text=True)
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
        assert "<style" not in page and "<script>" not in page and " style=" not in page
        assert '<script type="module" src="/researcher/static/researcher.js">' in page
    assert "setInterval(refresh" in logged_in.get("/researcher/static/researcher.js").get_data(as_text=True)


def test_logged_in_uploads_may_exceed_the_app_body_limit(app, logged_in, client, tmp_path):
    import os

    rows = manifest_rows(tmp_path / "src", 1, 1)
    (tmp_path / "src" / "padding.bin").write_bytes(os.urandom(3 * 1024 * 1024))  # > MAX_CONTENT_LENGTH
    write_manifest_csv(tmp_path / "src", rows)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name in ["manifest.csv", "padding.bin"] + [r["path"] for r in rows]:
            zf.write(tmp_path / "src" / name, name)
    data = buf.getvalue()
    assert len(data) > app.config["MAX_CONTENT_LENGTH"]
    assert _upload(logged_in, data, "big.zip", slug="big").status_code == 302
    anonymous = app.test_client()
    assert _upload(anonymous, data, "big.zip", slug="big2").status_code in (401, 413)


def test_researcher_pages_are_not_cached(app, logged_in, stimuli_dir):
    create_demo_study(app, stimuli_dir(1, 1))
    for url in ("/researcher/", "/researcher/studies/demo", "/researcher/progress.json",
                "/researcher/studies/demo/export/trials.csv", "/researcher/login"):
        assert logged_in.get(url).headers["Cache-Control"] == "no-store", url
    assert "no-store" not in logged_in.get("/researcher/static/researcher.css").headers.get("Cache-Control", "")
