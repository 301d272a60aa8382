"""Researcher login: every researcher route needs it, passwords are hashed, CSRF is enforced."""

from __future__ import annotations

import re

import pytest
from researcher_helpers import EMAIL, PASSWORD, make_app
from sqlalchemy import select

from study import db
from study.auth import AccountError, authenticate, create_researcher, safe_next
from study.tables import Researcher


def _fill(rule) -> str:
    values = {"slug": "demo", "table": "trials", "fmt": "csv"}
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: values.get(m.group(1), "1"), rule.rule)


def test_every_researcher_route_needs_a_login(app, client):
    rules = [r for r in app.url_map.iter_rules() if r.endpoint.startswith("researcher.")]
    assert len(rules) >= 8
    checked = 0
    for rule in rules:
        if rule.endpoint in ("researcher.login", "researcher.static"):  # the form; public CSS/JS
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = client.open(_fill(rule), method=method)
            if resp.status_code == 302:
                assert "/researcher/login" in resp.headers["Location"], rule.rule
            else:
                assert resp.status_code == 401, (rule.rule, method, resp.status_code)
            checked += 1
    assert checked >= 9


def test_json_routes_answer_401_json(client):
    resp = client.get("/researcher/progress.json")
    assert resp.status_code == 401
    assert resp.get_json()["error"]["message"]


def test_login_with_right_password_then_logout(client, researcher):
    resp = client.post("/researcher/login", data={"email": EMAIL.upper(), "password": PASSWORD})
    assert resp.status_code == 302
    assert client.get("/researcher/").status_code == 200
    with client.session_transaction() as sess:
        assert sess["researcher_id"] == researcher
    client.post("/researcher/logout")
    assert client.get("/researcher/").status_code == 302


def test_wrong_password_is_refused(client, researcher):
    resp = client.post("/researcher/login", data={"email": EMAIL, "password": PASSWORD + "x"})
    assert resp.status_code == 401
    assert b"Wrong email or password" in resp.data
    with client.session_transaction() as sess:
        assert "researcher_id" not in sess
    resp = client.post("/researcher/login", data={"email": "nobody@example.org", "password": PASSWORD})
    assert resp.status_code == 401


def test_passwords_are_stored_hashed(app, researcher):
    with app.app_context():
        row = db.session().scalar(select(Researcher))
        assert PASSWORD not in row.password_hash
        assert row.password_hash.startswith(("scrypt:", "pbkdf2:"))
        assert authenticate(db.session(), EMAIL, PASSWORD).id == researcher
        assert authenticate(db.session(), EMAIL, "wrong-password") is None


def test_account_errors_name_the_field(app, researcher):
    with app.app_context():
        with pytest.raises(AccountError) as e:
            create_researcher(db.session(), "not-an-email", PASSWORD)
        assert e.value.field == "email"
        with pytest.raises(AccountError) as e:
            create_researcher(db.session(), "b@example.org", "short")
        assert e.value.field == "password"
        with pytest.raises(AccountError) as e:
            create_researcher(db.session(), EMAIL, PASSWORD)
        assert "already exists" in e.value.message


def test_next_parameter_cannot_redirect_off_site(client, researcher):
    resp = client.post("/researcher/login?next=https://evil.example/x", data={"email": EMAIL, "password": PASSWORD})
    assert resp.headers["Location"].endswith("/researcher/")
    assert safe_next("//evil.example") is None
    assert safe_next("/researcher/studies/new") == "/researcher/studies/new"


def test_csrf_token_is_required_on_forms(tmp_path):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    with app.app_context():
        create_researcher(db.session(), EMAIL, PASSWORD)
        db.session().commit()
    client = app.test_client()
    resp = client.post("/researcher/login", data={"email": EMAIL, "password": PASSWORD})
    assert resp.status_code == 400  # no token: refused before the password is even checked
    page = client.get("/researcher/login").data.decode()
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    resp = client.post("/researcher/login", data={"email": EMAIL, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 302
    # logged in, a status change without the token is still refused
    assert client.post("/researcher/studies/demo/status", data={"status": "paused"}).status_code == 400
    # the participant JSON API is exempt (it is authenticated by its token header)
    resp = client.post("/api/v1/studies/demo/participants", json={"platform": "direct", "consent": True})
    assert resp.status_code != 400 or "CSRF" not in resp.get_data(as_text=True)
    app.extensions["sqlalchemy_engine"].dispose()


def test_wrong_passwords_lock_the_account_for_a_while(app, client, researcher):
    import datetime as dt

    from study import auth

    for _ in range(auth.MAX_FAILED_LOGINS):
        assert client.post("/researcher/login", data={"email": EMAIL, "password": "nope-nope"}).status_code == 401
    locked = client.post("/researcher/login", data={"email": EMAIL, "password": PASSWORD})
    assert locked.status_code == 429
    assert 0 < int(locked.headers["Retry-After"]) <= auth.LOCK_SECONDS
    assert b"locked" in locked.data
    with app.app_context():  # the lock runs out
        row = db.session().get(Researcher, researcher)
        row.locked_until = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        db.session().commit()
    assert client.post("/researcher/login", data={"email": EMAIL, "password": PASSWORD}).status_code == 302
    with app.app_context():
        row = db.session().get(Researcher, researcher)
        assert row.failed_logins == 0 and row.locked_until is None


def test_a_success_resets_the_failure_count(app, client, researcher):
    from study import auth

    for _ in range(auth.MAX_FAILED_LOGINS - 1):
        client.post("/researcher/login", data={"email": EMAIL, "password": "nope-nope"})
    assert client.post("/researcher/login", data={"email": EMAIL, "password": PASSWORD}).status_code == 302
    client.post("/researcher/logout")
    for _ in range(auth.MAX_FAILED_LOGINS - 1):
        assert client.post("/researcher/login", data={"email": EMAIL, "password": "nope-nope"}).status_code == 401
    assert client.post("/researcher/login", data={"email": EMAIL, "password": PASSWORD}).status_code == 302
