"""The Prolific integration against the local stand-in (tests/stand_ins/prolific.py): ending
codes in the participant's redirect, approving, the reconciliation, the dry check, the bonus
ledger, and clear one-line errors (no token, 401, 404, 429, 500) that leave nothing marked done."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prolific_helpers import (
    TOKEN,
    answer,
    complete,
    make_app,
    make_study,
    postgres_schema,
    start,
    status_of,
)
from sqlalchemy import select
from stand_ins.prolific import serve

from study import db
from study.participation.rules import ending_code, screen_out_redirect, screened_out_ending
from study.platforms import bonuses, prolific_records
from study.platforms.prolific import ProlificClient, ProlificError
from study.settings import StudySettings
from study.tables import BonusPayment, Study

CODES = [("DONE01", "COMPLETED"), ("FAIL01", "FAILED_ATTENTION_CHECK"),
         ("DEV01", "INCOMPATIBLE_DEVICE"), ("NOC01", "NO_CONSENT")]
ENDING_CODES = {"failed_attention_check": "FAIL01", "incompatible_device": "DEV01",
                "no_consent": "NOC01"}


@pytest.fixture(scope="module")
def prolific():
    state, server = serve(TOKEN, page_size=2)
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def env(prolific, monkeypatch):
    monkeypatch.setenv("PROLIFIC_API_TOKEN", TOKEN)
    monkeypatch.setenv("PROLIFIC_API_URL", f"{prolific.url}/api/v1/")
    prolific.fail_next.clear()
    prolific.drop_next.clear()
    return prolific


@pytest.fixture
def app(tmp_path):
    app = make_app(tmp_path)
    yield app
    app.extensions["sqlalchemy_engine"].dispose()


def _client(prolific) -> ProlificClient:
    return ProlificClient(TOKEN, f"{prolific.url}/api/v1/")


def _study(app) -> Study:
    return db.session().scalar(select(Study))


# ------------------------------------------------------------------ ending codes


def test_ending_codes_follow_the_settings_then_the_study():
    s = StudySettings.from_dict({"ending_codes": {"incompatible_device": "DEV01"}})
    assert ending_code("completed", s, "DONE01", "OUT01") == "DONE01"
    assert ending_code("incompatible_device", s, "DONE01", "OUT01") == "DEV01"
    assert ending_code("failed_attention_check", s, "DONE01", "OUT01") == "OUT01"  # the fallback
    assert ending_code("no_consent", s, "DONE01", None) is None
    code, url = screen_out_redirect("incompatible_device", s, "DONE01", None, "prolific", "se1")
    assert (code, url) == ("DEV01", "https://app.prolific.com/submissions/complete?cc=DEV01")
    with pytest.raises(ValueError, match="ending: must be one of"):
        screen_out_redirect("completed", s, "DONE01", None, "prolific", None)
    assert (screened_out_ending(0), screened_out_ending(7)) == ("incompatible_device",
                                                                "failed_attention_check")


def test_failing_the_catch_trials_screens_out_with_the_attention_code(app):
    make_study(app, settings={"max_catch_failures": 0, "ending_codes": ENDING_CODES})
    client = app.test_client()
    failing = start(client, "rf", "P_FAIL", "S_FAIL")
    assert answer(client, app, failing, catch_wrong=True) == 5
    out = complete(client, failing)
    assert out == {"completion_code": "FAIL01",
                   "redirect_url": "https://app.prolific.com/submissions/complete?cc=FAIL01"}
    assert status_of(app, "P_FAIL") == "screened_out"
    assert complete(client, failing)["completion_code"] == "FAIL01"  # a repeat says the same
    # Following the study link again shows the end of the study with the attention code, not
    # the device page with the device code.
    again = client.get("/s/rf?PROLIFIC_PID=P_FAIL&STUDY_ID=st1&SESSION_ID=S_FAIL")
    page = again.get_data(as_text=True)
    assert again.status_code == 403 and "This study has ended for you" in page
    assert "FAIL01" in page and "cc=FAIL01" in page
    assert "this device" not in page and "DEV01" not in page
    passing = start(client, "rf", "P_PASS", "S_PASS")
    answer(client, app, passing)
    assert complete(client, passing)["redirect_url"].endswith("cc=DONE01")
    assert status_of(app, "P_PASS") == "completed"


def test_a_screen_out_without_a_code_sends_nowhere(app):
    make_study(app, settings={"max_catch_failures": 0}, screened_out_code=None)
    client = app.test_client()
    token = start(client, "rf", "P1", "S1")
    answer(client, app, token, catch_wrong=True)
    assert complete(client, token) == {"completion_code": None, "redirect_url": None}
    assert status_of(app, "P1") == "screened_out"


def test_without_a_limit_catch_failures_still_complete(app):
    make_study(app)
    client = app.test_client()
    token = start(client, "rf", "P1", "S1")
    answer(client, app, token, catch_wrong=True)
    assert complete(client, token)["completion_code"] == "DONE01"
    assert status_of(app, "P1") == "completed"


# ------------------------------------------------------------------ client errors


def test_a_missing_token_is_one_clear_line(app, monkeypatch):
    monkeypatch.delenv("PROLIFIC_API_TOKEN", raising=False)
    result = app.test_cli_runner().invoke(args=["prolific", "check", "--study", "a" * 24])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: PROLIFIC_API_TOKEN is not set: create an API token in Prolific (API Tokens page) "
        "and export it"]


@pytest.mark.parametrize(("status", "words"), [
    (401, "Prolific refused the API token (401); check PROLIFIC_API_TOKEN"),
    (429, "Prolific is limiting the request rate (429); try again in 30 s"),
    (500, "Prolific had a server error (500); try again later"),
])
def test_refusals_are_one_line(env, status, words):
    env.fail_next[("GET", "/api/v1/users/me/")] = status
    with pytest.raises(ProlificError) as exc:
        _client(env).me()
    assert str(exc.value).startswith(f"GET /api/v1/users/me/: {words}")
    assert "\n" not in str(exc.value) and exc.value.status == status


def test_a_wrong_token_and_an_unknown_study(env):
    with pytest.raises(ProlificError, match="refused the API token"):
        ProlificClient("wrong-token", f"{env.url}/api/v1/").me()
    with pytest.raises(ProlificError, match=r"Prolific has no such study \(404\)"):
        _client(env).study("f" * 24)
    with pytest.raises(ProlificError, match="is not a Prolific id"):
        _client(env).study("../users/me")


def test_every_page_of_submissions_is_read(env):
    sid = env.add_study("paged", CODES)
    made = {env.add_submission(sid, f"PP{i}", "AWAITING REVIEW") for i in range(5)}
    with _client(env) as c:
        got = c.submissions(sid)
    assert {s.id for s in got} == made and len(got) == 5  # three pages of two
    assert env.calls.count(("GET", f"/api/v1/studies/{sid}/submissions/")) == 3


# ------------------------------------------------------------------ reconciliation and approval


def _reconciliation_study(app, env) -> str:
    """Stored: P_OK completed, P_PART 2 of 5 answers, P_GHOST completed but unknown to Prolific.
    Prolific: P_OK awaiting review, P_PART approved, P_NODATA approved with nothing stored,
    P_BACK returned."""
    make_study(app)
    client = app.test_client()
    for pid, n in (("P_OK", None), ("P_PART", 2), ("P_GHOST", None)):
        token = start(client, "rf", pid, f"S_{pid}")
        answer(client, app, token, n)
        if n is None:
            complete(client, token)
    sid = env.add_study("reconciled", CODES)
    env.add_submission(sid, "P_OK", "AWAITING REVIEW", "DONE01")
    env.add_submission(sid, "P_PART", "APPROVED", "DONE01")
    env.add_submission(sid, "P_NODATA", "APPROVED", "DONE01")
    env.add_submission(sid, "P_BACK", "RETURNED")
    with app.app_context():
        prolific_records.link(db.session(), _study(app), sid)
    return sid


def test_reconciliation_flags_missing_partial_and_unknown(app, env):
    _reconciliation_study(app, env)
    with app.app_context(), _client(env) as c:
        rec = prolific_records.reconciliation(db.session(), _study(app), c)
    problems = {r.prolific_pid: r.problem for r in rec.rows}
    assert problems == {
        "P_NODATA": "paid at Prolific, but no data is stored",
        "P_PART": "paid at Prolific, but the data is partial (2 of 5 trials, started)",
        "P_GHOST": "stored here, but Prolific does not know this participant",
        "P_OK": None, "P_BACK": None,
    }
    assert [r.prolific_pid for r in rec.approvable] == ["P_OK"]


@pytest.mark.postgres
def test_screen_out_reconciliation_and_bonus_on_postgresql(postgres_url, env, tmp_path):
    with postgres_schema(postgres_url) as url:
        app = make_app(tmp_path, database_url=url)
        try:
            make_study(app, settings={"max_catch_failures": 1, "ending_codes": ENDING_CODES})
            client = app.test_client()
            token = start(client, "rf", "P_PG", "S_PG")
            answer(client, app, token, catch_wrong=True)
            assert complete(client, token)["completion_code"] == "FAIL01"  # 2 wrong > 1 allowed
            sid = env.add_study("pg", CODES)
            sub = env.add_submission(sid, "P_PG", "APPROVED", "FAIL01")
            env.add_submission(sid, "P_PG_NODATA", "AWAITING REVIEW")
            with app.app_context(), _client(env) as c:
                s = db.session()
                prolific_records.link(s, _study(app), sid)
                rec = prolific_records.reconciliation(s, _study(app), c)
                assert {r.prolific_pid: r.problem for r in rec.rows} == {
                    "P_PG": None, "P_PG_NODATA": "awaiting review at Prolific, but no data is stored"}
                lines = [bonuses.BonusLine(sub, Decimal("0.30"))]
                for _ in range(2):  # recorded and paid twice over: paid once
                    bonuses.record_intended(s, _study(app).id, "pg", lines)
                    bonuses.pay_outstanding(s, _study(app).id, sid, c)
            assert env.bonuses_paid(sub) == [30]
        finally:
            app.extensions["sqlalchemy_engine"].dispose()


def test_approve_only_complete_submissions_and_the_page_shows_them(app, env):
    sid = _reconciliation_study(app, env)
    web = app.test_client()
    with web.session_transaction() as sess:
        sess["researcher_id"] = 1
    assert 'href="/researcher/studies/rf/prolific"' in web.get("/researcher/studies/rf").get_data(as_text=True)
    page = web.get("/researcher/studies/rf/prolific")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "3 flagged" in html and "paid at Prolific, but no data is stored" in html
    by_pid = {s["participant"]: s for s in env.submissions.values() if s["study_id"] == sid}

    env.fail_next[("POST", "/api/v1/submissions/")] = 500  # refused: nothing approved
    web.post("/researcher/studies/rf/prolific/approve")
    assert by_pid["P_OK"]["status"] == "AWAITING REVIEW"
    res = web.post("/researcher/studies/rf/prolific/approve", follow_redirects=True)
    assert "Approved 1 submission(s)." in res.get_data(as_text=True)
    assert {p: s["status"] for p, s in by_pid.items()} == {
        "P_OK": "APPROVED", "P_PART": "APPROVED", "P_NODATA": "APPROVED", "P_BACK": "RETURNED"}
    transitions = [c for c in env.calls if c[0] == "POST" and c[1].endswith("/transition/")]
    assert transitions == [("POST", f"/api/v1/submissions/{by_pid['P_OK']['id']}/transition/")] * 2


def test_the_page_shows_a_prolific_error_instead_of_a_traceback(app, env):
    _reconciliation_study(app, env)
    web = app.test_client()
    with web.session_transaction() as sess:
        sess["researcher_id"] = 1
    env.fail_next[("GET", "/api/v1/studies/")] = 429
    page = web.get("/researcher/studies/rf/prolific")
    assert page.status_code == 502
    assert "Prolific is limiting the request rate (429)" in page.get_data(as_text=True)
    assert web.get("/researcher/studies/nope/prolific").status_code == 404


def test_the_commands_link_reconcile_and_approve(app, env):
    sid = _reconciliation_study(app, env)
    cli = app.test_cli_runner()
    with app.app_context():
        prolific_records.link(db.session(), _study(app), "0" * 24)  # an earlier, wrong link
    wrong = cli.invoke(args=["prolific", "link", "rf", "--study", "f" * 24])
    assert wrong.exit_code == 2 and "Prolific has no such study (404)" in wrong.output
    with app.app_context():
        assert prolific_records.linked_study_id(db.session(), _study(app).id) == "0" * 24  # kept
    linked = cli.invoke(args=["prolific", "link", "rf", "--study", sid])
    assert f"study rf is linked to Prolific study {sid} ('reconciled')" in linked.output
    rec = cli.invoke(args=["prolific", "reconcile", "rf"])
    assert rec.exit_code == 1
    assert "5 participant(s), 3 flagged, 1 approvable" in rec.output
    assert "P_NODATA\tAPPROVED\t-\t0/0\tpaid at Prolific, but no data is stored" in rec.output
    assert "approved 1 submission(s)" in cli.invoke(args=["prolific", "approve", "rf"]).output
    assert "approved 0 submission(s)" in cli.invoke(args=["prolific", "approve", "rf"]).output


def test_approving_without_the_form_token_approves_nothing(tmp_path, env):
    app = make_app(tmp_path, WTF_CSRF_ENABLED=True)
    sid = _reconciliation_study(app, env)
    web = app.test_client()
    with web.session_transaction() as sess:
        sess["researcher_id"] = 1
    res = web.post("/researcher/studies/rf/prolific/approve")
    assert res.status_code == 400 and "The CSRF token is missing." in res.get_data(as_text=True)
    assert {s["status"] for s in env.submissions.values() if s["study_id"] == sid} == {
        "AWAITING REVIEW", "APPROVED", "RETURNED"}
    app.extensions["sqlalchemy_engine"].dispose()


# ------------------------------------------------------------------ the dry check


def test_check_reads_compares_and_changes_nothing(app, env):
    make_study(app, settings={"ending_codes": {"failed_attention_check": "FAIL01"}})
    sid = env.add_study("checked", CODES[:3])
    before = len(env.calls)
    result = app.test_cli_runner().invoke(args=["prolific", "check", "rf", "--study", sid])
    out = result.output
    assert f"token accepted; Prolific study {sid}: 'checked', ACTIVE" in out
    assert "code FAIL01: FAILED_ATTENTION_CHECK (MANUALLY_REVIEW)" in out
    assert "rf completed: DONE01 (COMPLETED) ok" in out
    assert "rf failed_attention_check: FAIL01 (FAILED_ATTENTION_CHECK) ok" in out
    # the device screen-out falls back to OUT01, which Prolific does not have
    assert "rf incompatible_device: OUT01 (INCOMPATIBLE_DEVICE) PROBLEM: Prolific's study has no code OUT01" in out
    assert "2 problem(s) with the completion codes" in out  # and no_consent's OUT01
    assert result.exit_code == 1
    assert all(method == "GET" for method, _ in env.calls[before:])
    with app.app_context():
        assert prolific_records.linked_study_id(db.session(), _study(app).id) is None


# ------------------------------------------------------------------ bonuses


def _bonus_setup(app, env, tmp_path) -> tuple[str, list[str]]:
    make_study(app)
    sid = env.add_study("bonus", CODES)
    subs = [env.add_submission(sid, f"PB{i}", "APPROVED", "DONE01") for i in range(2)]
    with app.app_context():
        prolific_records.link(db.session(), _study(app), sid)
    (tmp_path / "b.csv").write_text(f"submission_id,amount\n{subs[0]},1.50\n{subs[1]},0.25\n")
    return sid, subs


def _bonus(app, tmp_path):
    return app.test_cli_runner().invoke(args=["prolific", "bonus", "rf", "--file", str(tmp_path / "b.csv")])


def test_a_retried_bonus_is_paid_once(app, env, tmp_path):
    sid, subs = _bonus_setup(app, env, tmp_path)
    first = _bonus(app, tmp_path)
    assert "2 new bonus(es) in the ledger" in first.output and "paid 2" in first.output
    again = _bonus(app, tmp_path)  # the same file again: nothing new, nothing paid
    assert "0 new bonus(es)" in again.output and "paid 0" in again.output
    assert [env.bonuses_paid(s) for s in subs] == [[150], [25]]
    assert [b["paid_times"] for b in env.bulks.values() if b["rows"][0][0] == subs[0]] == [1]


def test_a_crash_between_set_up_and_pay_pays_once(app, env, tmp_path):
    sid, subs = _bonus_setup(app, env, tmp_path)
    with app.app_context(), _client(env) as c:
        s = db.session()
        bonuses.record_intended(s, _study(app).id, "bonus", bonuses.parse_bonus_csv((tmp_path / "b.csv").read_text()))
        bonuses.set_up_intended(s, _study(app).id, sid, c)  # ... and the process dies here
    assert [env.bonuses_paid(x) for x in subs] == [[], []]
    assert "paid 2" in _bonus(app, tmp_path).output
    assert "paid 0" in _bonus(app, tmp_path).output
    assert [env.bonuses_paid(x) for x in subs] == [[150], [25]]
    mine = [b for b in env.bulks.values() if b["rows"][0][0] == subs[0]]
    assert [b["paid_times"] for b in mine] == [1]  # the retry paid the bulk set up before the crash


def test_a_lost_answer_to_pay_is_confirmed_not_repaid(app, env, tmp_path):
    sid, subs = _bonus_setup(app, env, tmp_path)
    env.drop_next.add(("POST", "/api/v1/bulk-bonus-payments/"))
    lost = _bonus(app, tmp_path)
    assert lost.exit_code == 2 and "whether bulk" in lost.output and "Traceback" not in lost.output
    with app.app_context():
        assert set(db.session().scalars(select(BonusPayment.state))) == {"sent"}
    retry = _bonus(app, tmp_path)
    assert "paid 0, confirmed 2 sent earlier" in retry.output
    assert [env.bonuses_paid(x) for x in subs] == [[150], [25]]


@pytest.mark.parametrize("status", [401, 429, 500])
def test_a_refused_pay_marks_nothing_paid(app, env, tmp_path, status):
    sid, subs = _bonus_setup(app, env, tmp_path)
    env.fail_next[("POST", "/api/v1/bulk-bonus-payments/")] = status
    refused = _bonus(app, tmp_path)
    assert refused.exit_code == 2 and len(refused.output.strip().splitlines()) == 2  # added, error
    with app.app_context():
        states = set(db.session().scalars(select(BonusPayment.state)))
    assert states == ({"sent"} if status >= 500 else {"set_up"})  # 5xx: maybe paid, never resent
    assert [env.bonuses_paid(x) for x in subs] == [[], []]
    retry = _bonus(app, tmp_path)
    if status >= 500:
        assert "2 sent but not confirmed" in retry.output and "paid 0" in retry.output
        with app.app_context():
            keys = list(db.session().scalars(select(BonusPayment.key)))
        args = ["prolific", "bonus", "rf"] + [a for k in keys for a in ("--release", k)]
        assert "released 2" in app.test_cli_runner().invoke(args=args).output
    else:
        assert "paid 2" in retry.output
    assert [env.bonuses_paid(x) for x in subs] == [[150], [25]]


def test_bad_bonus_files_name_the_line():
    with pytest.raises(bonuses.BonusError, match="line 2: amount must be above 0"):
        bonuses.parse_bonus_csv("submission_id,amount\nabc,150.001\n")
    with pytest.raises(bonuses.BonusError, match="line 1: amount 'x' is not a number"):
        bonuses.parse_bonus_csv("abc,x\n")
    with pytest.raises(bonuses.BonusError, match="line 2: submission abc appears twice"):
        bonuses.parse_bonus_csv("abc,1\nabc,2\n")
    assert bonuses.parse_bonus_csv("abc,1.5\n") == [bonuses.BonusLine("abc", Decimal("1.5"))]
