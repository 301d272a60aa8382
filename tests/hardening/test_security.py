"""Security of the live study: logins on every researcher route, CSRF, login rate limit, cookie
flags, security headers and no inline script, unguessable tokens, path traversal, stored XSS."""

from __future__ import annotations

import datetime as dt
import email.utils
import io
import math
import re
import zipfile
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hardening_helpers import EMAIL, PASSWORD, SECRET

from study import create_app

H = "X-Participant-Token"
ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_DIRS = [ROOT / "study" / "templates", ROOT / "study" / "researcher" / "templates"]

# Endpoints that anyone may reach: participant pages and API (the API's own token guard is
# tested in test_bad_input), static files, the login page, the health check, the API document.
PUBLIC = {
    "static", "researcher.static", "researcher.login", "participant.healthz", "participant.landing",
    "participant.task", "api.openapi_json", "api.start", "api.get_trial", "api.post_response",
    "api.post_events", "api.complete", "api.classify_clicks", "api.trial_image",
}
ARG_VALUES = {"slug": "clickme", "table": "trials", "fmt": "csv", "filename": "x.js", "trial_id": 1,
              "stimulus_id": 1}


def _protected_urls(app: Flask) -> list[tuple[str, str, str]]:
    out = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        values = {a: ARG_VALUES.get(a, "x") for a in rule.arguments}
        with app.test_request_context():
            from flask import url_for

            url = url_for(rule.endpoint, **values)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, url))
    return out


def _refused(res) -> bool:
    if res.status_code in (401, 403):
        return True
    return res.status_code in (302, 303) and "/researcher/login" in res.headers.get("Location", "")


# ---------------------------------------------------------------- logins


def test_every_non_public_route_needs_a_researcher_login(app: Flask, work: Path, researcher_id: int) -> None:
    # CSRF off, so that what refuses a POST below is the login guard itself.
    plain = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": SECRET,
                        "STIMULI_ROOT": str(work / "store"), "WTF_CSRF_ENABLED": False})
    client, logged_in = plain.test_client(), plain.test_client()
    with logged_in.session_transaction() as sess:
        sess["researcher_id"] = researcher_id
    urls = _protected_urls(plain)
    endpoints = {e for e, _, _ in urls}
    # The walk really covers the dashboard, the exports and the researcher-only image.
    assert {"researcher.index", "researcher.export_table", "researcher.export_dictionary",
            "researcher.study_status", "researcher.logout", "api.stimulus_image"} <= endpoints, endpoints
    for endpoint, method, url in urls:
        for accept in ("text/html", "application/json"):
            res = client.open(url, method=method, headers={"Accept": accept})
            assert _refused(res), (endpoint, method, url, accept, res.status_code)
            assert b"C0DE" not in res.data and b"PROLIFIC" not in res.data
    # With a login the same GET routes answer (so the refusal above was the login, not a 404).
    for endpoint, method, url in urls:
        if method == "GET" and endpoint != "researcher.static":
            res = logged_in.get(url)
            assert not _refused(res) and res.status_code < 500, (endpoint, url, res.status_code)


def test_exports_need_a_login_in_every_table_and_format(client: FlaskClient, logged_in: FlaskClient) -> None:
    for table in ("trials", "clicks", "events"):
        for fmt in ("csv", "parquet"):
            url = f"/researcher/studies/clickme/export/{table}.{fmt}"
            assert _refused(client.get(url)) and _refused(client.get(url + "?raw=1"))
            assert _refused(client.get(url, headers={"Accept": "application/json"}))
            assert logged_in.get(url).status_code == 200


# ---------------------------------------------------------------- CSRF


def _csrf_app(work: Path) -> Flask:
    return create_app({"DATABASE_URL": f"sqlite:///{work / 'study.db'}", "SECRET_KEY": SECRET,
                       "STIMULI_ROOT": str(work / "store"), "WTF_CSRF_ENABLED": True})


def test_every_form_post_needs_a_csrf_token(app: Flask, work: Path, researcher_id: int) -> None:
    csrf_app = _csrf_app(work)
    client = csrf_app.test_client()
    with client.session_transaction() as sess:
        sess["researcher_id"] = researcher_id
    posts = [(r.endpoint, r.rule) for r in csrf_app.url_map.iter_rules()
             if "POST" in r.methods and not r.endpoint.startswith("api.")]
    assert {e for e, _ in posts} >= {"researcher.login", "researcher.logout", "researcher.new_study",
                                     "researcher.study_status"}
    for endpoint, rule in posts:
        url = rule.replace("<slug>", "clickme")
        res = client.post(url, data={"status": "closed", "email": EMAIL, "password": PASSWORD})
        assert res.status_code == 400, (endpoint, res.status_code)
        assert b"CSRF" in res.data or b"csrf" in res.data.lower(), endpoint
    # Nothing happened: the study is still live and the researcher still logged in.
    assert client.get("/researcher/studies/clickme").status_code == 200
    assert b"closed" not in client.get("/researcher/studies/clickme/progress.json").data


def test_every_template_form_carries_a_csrf_token() -> None:
    forms = 0
    for folder in TEMPLATE_DIRS:
        for path in folder.rglob("*.html"):
            text = path.read_text()
            for form in re.findall(r"<form\b.*?</form>", text, flags=re.S | re.I):
                if re.search(r'method\s*=\s*"?post', form, flags=re.I):
                    forms += 1
                    assert "csrf_token" in form, f"{path.name}: a POST form without csrf_token"
    assert forms >= 4


# ---------------------------------------------------------------- login rate limit


def test_login_is_rate_limited_across_workers(app: Flask, work: Path, researcher_id: int) -> None:
    """Repeated wrong passwords lock the account for a while, also for the right password and
    also through another app instance on the same database (state in the database, so it holds
    across gunicorn workers)."""
    a = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": SECRET, "WTF_CSRF_ENABLED": False,
                    "STIMULI_ROOT": str(work / "store")})
    b = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": SECRET, "WTF_CSRF_ENABLED": False,
                    "STIMULI_ROOT": str(work / "store")})
    ca, cb = a.test_client(), b.test_client()
    statuses = [(ca if i % 2 else cb).post("/researcher/login", data={"email": EMAIL, "password": f"wrong{i}"}).status_code
                for i in range(12)]
    assert 429 in statuses, statuses
    assert statuses[:3] == [401, 401, 401], statuses
    res = ca.post("/researcher/login", data={"email": EMAIL, "password": PASSWORD})
    assert res.status_code == 429 and res.headers.get("Retry-After"), res.status_code
    with ca.session_transaction() as sess:
        assert "researcher_id" not in sess
    # Another account is not locked by these failures.
    from study import auth, db

    with a.app_context():
        auth.create_researcher(db.session(), "other@example.org", PASSWORD)
        db.session().commit()
    ok = cb.post("/researcher/login", data={"email": "other@example.org", "password": PASSWORD})
    assert ok.status_code in (302, 303), ok.status_code


def test_one_address_guessing_across_many_accounts_is_limited(app: Flask, work: Path,
                                                               researcher_id: int) -> None:
    """Wrong logins from one client address over many emails (no account reaches its own lock)
    are refused after MAX_FAILURES_PER_ADDRESS, across app instances; another address, and the
    X-Forwarded-For address behind a trusted proxy, are counted on their own."""
    from study import auth

    cfg = {"DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": SECRET, "WTF_CSRF_ENABLED": False,
           "STIMULI_ROOT": str(work / "store")}
    a, b = create_app(cfg).test_client(), create_app({**cfg, "TRUSTED_PROXIES": 1}).test_client()
    here = {"REMOTE_ADDR": "203.0.113.7"}
    statuses = [(a if i % 2 else b).post("/researcher/login", environ_base=here,
                                         data={"email": f"user{i}@example.org", "password": "guess123"}).status_code
                for i in range(auth.MAX_FAILURES_PER_ADDRESS)]
    assert statuses == [401] * auth.MAX_FAILURES_PER_ADDRESS
    res = a.post("/researcher/login", environ_base=here, data={"email": EMAIL, "password": PASSWORD})
    assert res.status_code == 429 and int(res.headers["Retry-After"]) > 0
    # The right password from another address still works.
    ok = a.post("/researcher/login", environ_base={"REMOTE_ADDR": "198.51.100.2"},
                data={"email": EMAIL, "password": PASSWORD})
    assert ok.status_code in (302, 303), ok.status_code
    # Behind a trusted proxy the client address is the forwarded one, not the proxy's.
    proxied = b.post("/researcher/login", environ_base={"REMOTE_ADDR": "198.51.100.2"},
                     headers={"X-Forwarded-For": "203.0.113.7"},
                     data={"email": EMAIL, "password": PASSWORD})
    assert proxied.status_code == 429


# ---------------------------------------------------------------- cookies and headers


def _cookie_flags(res) -> list[str]:
    return [h for h in res.headers.getlist("Set-Cookie") if h.startswith("session=")]


@pytest.mark.parametrize("secure", [False, True])
def test_session_cookies_are_httponly_samesite_and_secure_when_set(app: Flask, work: Path, researcher_id: int,
                                                                    secure: bool) -> None:
    a = create_app({"DATABASE_URL": app.config["DATABASE_URL"], "SECRET_KEY": SECRET, "WTF_CSRF_ENABLED": False,
                    "STIMULI_ROOT": str(work / "store"), "SESSION_COOKIE_SECURE": secure})
    c = a.test_client()
    login = c.post("/researcher/login", data={"email": EMAIL, "password": PASSWORD})
    start = c.post("/api/v1/studies/clickme/participants", json={"consent": True})
    assert login.status_code in (302, 303) and start.status_code == 201
    for res in (login, start):
        cookies = _cookie_flags(res)
        assert cookies, res.headers
        for cookie in cookies:
            assert "HttpOnly" in cookie and re.search(r"SameSite=(Lax|Strict)", cookie), cookie
            assert ("Secure" in cookie) == secure, cookie
    # A researcher's login expires within a working day (Flask's default would be 31 days).
    expires = re.search(r"Expires=([^;]+)", _cookie_flags(login)[0])
    assert expires, _cookie_flags(login)
    left = email.utils.parsedate_to_datetime(expires.group(1)) - dt.datetime.now(dt.UTC)
    assert dt.timedelta(hours=11) < left <= dt.timedelta(hours=12, minutes=1)


def test_the_secure_flag_follows_the_environment(monkeypatch: pytest.MonkeyPatch, work: Path) -> None:
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    monkeypatch.setenv("SECRET_KEY", SECRET)
    a = create_app({"DATABASE_URL": f"sqlite:///{work / 'study.db'}"})
    assert a.config["SESSION_COOKIE_SECURE"] is True


def test_security_headers_on_pages_api_and_errors(client: FlaskClient, start) -> None:
    token = start()["token"]
    responses = [client.get("/s/clickme"), client.get("/researcher/login"), client.get("/healthz"),
                 client.get("/api/v1/participant/trial", headers={H: token}), client.get("/nowhere"),
                 client.get("/api/v1/nowhere"), client.get("/researcher/")]
    for res in responses:
        csp = res.headers.get("Content-Security-Policy", "")
        directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
        assert directives.get("frame-ancestors") in (["'none'"], ["'self'"]), (res.request.path, csp)
        script = directives.get("script-src") or directives.get("default-src")
        assert script and "'unsafe-inline'" not in script and "'unsafe-eval'" not in script, csp
        assert res.headers.get("X-Content-Type-Options") == "nosniff"


def test_templates_have_no_inline_script_or_handlers() -> None:
    checked = 0
    for folder in TEMPLATE_DIRS:
        for path in folder.rglob("*.html"):
            text = path.read_text()
            checked += 1
            for tag, body in re.findall(r"(<script\b[^>]*>)(.*?)</script>", text, flags=re.I | re.S):
                assert "src=" in tag and not body.strip(), f"{path.name}: inline <script>"
            assert not re.search(r"\son[a-z]+\s*=", text, flags=re.I), f"{path.name}: inline on* handler"
            assert "javascript:" not in text.lower(), path.name
    assert checked >= 5


# ---------------------------------------------------------------- participants


def test_participant_tokens_are_long_random_and_unique(client: FlaskClient, start) -> None:
    tokens = [start()["token"] for _ in range(60)]
    assert len(set(tokens)) == len(tokens)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43,}", t) for t in tokens), tokens[:3]
    # At least 256 bits from a URL-safe alphabet: 6 bits per character, characters near uniform.
    assert min(len(t) for t in tokens) * 6 >= 256
    counts = Counter("".join(tokens))
    n = sum(counts.values())
    entropy = -sum(c / n * math.log2(c / n) for c in counts.values())
    assert entropy > 5.8, entropy  # log2(64) = 6
    assert len({t[:6] for t in tokens}) == len(tokens)  # no shared prefix or counter


def test_the_participant_id_is_not_the_token_and_reveals_nothing(start) -> None:
    out = start(pid="PROLIFIC-SECRET-ID")
    assert out["participant_id"] != out["token"] and "PROLIFIC" not in out["participant_id"]


def test_a_session_cookie_resumes_only_its_own_participant(app: Flask, start) -> None:
    a, b = app.test_client(), app.test_client()
    ta = a.post("/api/v1/studies/clickme/participants", json={"consent": True}).get_json()["token"]
    tb = b.post("/api/v1/studies/clickme/participants", json={"consent": True}).get_json()["token"]
    page_a = a.get("/s/clickme/task").get_data(as_text=True)
    assert ta in page_a and tb not in page_a
    fresh = app.test_client().get("/s/clickme/task")
    assert fresh.status_code in (302, 303) and ta not in fresh.get_data(as_text=True)


# ---------------------------------------------------------------- files


@pytest.mark.parametrize("path", ["/static/../__init__.py", "/static/%2e%2e/__init__.py", "/static/..%2f__init__.py",
                                  "/static//etc/passwd", "/researcher/static/../views.py",
                                  "/static/%2e%2e/%2e%2e/instance/secret_key"])
def test_static_files_do_not_leave_their_folder(client: FlaskClient, path: str) -> None:
    res = client.get(path, follow_redirects=True)
    assert res.status_code in (400, 404), (path, res.status_code)
    assert b"import" not in res.data and SECRET.encode() not in res.data


def test_a_stored_path_outside_the_stimulus_root_is_never_served(app: Flask, work: Path, start, client) -> None:
    from sqlalchemy import update

    from study import db
    from study.tables import Stimulus

    (work / "outside.png").write_bytes(b"\x89PNG secret")
    with app.app_context():
        db.session().execute(update(Stimulus).values(path="../outside.png"))
        db.session().commit()
    token = start()["token"]
    trial = client.get("/api/v1/participant/trial", headers={H: token}).get_json()["trial"]
    res = client.get(trial["image_url"], headers={H: token})
    assert res.status_code == 404 and b"secret" not in res.data


def test_zip_bundles_with_unsafe_paths_are_refused(work: Path) -> None:
    from study.manifest import ManifestError
    from study.researcher.upload import unpack_bundle

    for name in ("../evil.png", "/abs/evil.png", "a/../../evil.png", "a\\..\\evil.png"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("manifest.csv", "stimulus_id,path\n")
            zf.writestr(name, b"x")
        archive = work / "b.zip"
        archive.write_bytes(buf.getvalue())
        with pytest.raises(ManifestError):
            unpack_bundle(archive, work / "into")
        assert not (work / "evil.png").exists()


def test_manifest_paths_cannot_escape_their_folder(work: Path) -> None:
    from study import manifest

    (work / "m").mkdir()
    (work / "secret.png").write_bytes(b"x")
    sha = manifest.sha256_file(work / "secret.png")
    csv = (work / "m" / "manifest.csv")
    csv.write_text("stimulus_id,path,sha256,source,model,class_label,dataset,split\n"
                   f"s0,../secret.png,{sha},real,,digit0,digits,heldout\n")
    with pytest.raises(manifest.ManifestError, match="path"):
        rows = manifest.read_manifest(csv)
        from sqlalchemy.orm import Session

        from study.db import make_engine

        definition = manifest.parse_definition({"task": "realfake", "trials_per_participant": 1,
                                                "n_practice": 0, "n_catch": 0})
        engine = make_engine(f"sqlite:///{work / 'study.db'}")
        with Session(engine) as s:
            manifest.create_study(s, rows, work / "m", definition, work / "store2", slug="escape")


# ---------------------------------------------------------------- stored XSS


XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_study_texts_are_escaped_on_every_page(app: Flask, logged_in: FlaskClient) -> None:
    from sqlalchemy import update

    from study import db
    from study.tables import Study

    with app.app_context():
        db.session().execute(update(Study).where(Study.slug == "clickme").values(
            title=XSS, consent_text=XSS, instructions_text=XSS))
        db.session().commit()
    participant = app.test_client()
    pages = [participant.get("/s/clickme")]
    participant.post("/api/v1/studies/clickme/participants", json={"consent": True})
    pages += [participant.get("/s/clickme/task"), logged_in.get("/researcher/"),
              logged_in.get("/researcher/studies/clickme")]
    for res in pages:
        assert res.status_code == 200, res.status_code
        assert active_content(res.get_data(as_text=True)) == [], res.request.path
    assert any("&lt;script&gt;alert" in p.get_data(as_text=True) for p in pages)


class _ActiveContent(HTMLParser):
    """Collects what a browser would run: inline scripts and on* handler attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {k.lower() for k, _ in attrs}
        if tag == "script":
            self._in_script = True
            if "src" not in names:
                self.found.append("inline <script>")
        self.found += [f"<{tag} {k}>" for k in names if k.startswith("on")]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append("script body")


def active_content(html: str) -> list[str]:
    parser = _ActiveContent()
    parser.feed(html)
    return parser.found


def test_the_active_content_detector_sees_injected_script() -> None:
    assert active_content(XSS) == ["inline <script>", "script body", "<img onerror>"]
    assert active_content('<p>&lt;script&gt;</p><script type="module" src="/a.js"></script>') == []


def test_the_csrf_exempt_api_cannot_be_driven_cross_site(app: Flask, client: FlaskClient) -> None:
    """The JSON API is exempt from form CSRF tokens; what protects it instead: a cross-site page can
    only send "simple" requests (form or text/plain bodies, no custom headers) without a CORS
    preflight, and the API refuses those (415), and grants no cross-origin access."""
    from sqlalchemy import func, select

    from study import db
    from study.tables import Participant

    evil = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
    body = '{"platform": "direct", "consent": true}'
    res = client.post("/api/v1/studies/clickme/participants", data=body, headers=evil)
    assert res.status_code == 415
    form = client.post("/api/v1/studies/clickme/participants", data={"consent": "true"},
                       headers={"Origin": "https://evil.example"})
    assert form.status_code == 415
    with app.app_context():
        assert db.session().scalar(select(func.count()).select_from(Participant)) == 0
    pre = client.options("/api/v1/participant/responses", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-participant-token, content-type"})
    ok = client.post("/api/v1/studies/clickme/participants", json={"consent": True},
                     headers={"Origin": "https://evil.example"})
    for res in (pre, ok):
        assert "Access-Control-Allow-Origin" not in res.headers
        assert "Access-Control-Allow-Credentials" not in res.headers


def test_pages_and_answers_holding_secrets_are_not_cached(client: FlaskClient, logged_in: FlaskClient) -> None:
    """The task page embeds the participant's token and the API answers carry trial data; no
    browser or proxy cache may keep them (shared lab computers, back button after the study)."""
    start = client.post("/api/v1/studies/clickme/participants", json={"consent": True})
    token = start.get_json()["token"]
    task = client.get("/s/clickme/task")
    assert token in task.get_data(as_text=True)
    answers = [start, task, client.get("/api/v1/participant/trial", headers={H: token}),
               logged_in.get("/researcher/"), logged_in.get("/researcher/studies/clickme/export/trials.csv")]
    for res in answers:
        assert "no-store" in res.headers.get("Cache-Control", ""), (res.request.path, res.headers.get("Cache-Control"))
