"""The device rule: phones and tablets told from real user agents, the study's device settings
and their errors, and a start screened out by it (stored as such, no trials, no answers; the
study's page says why)."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from study.errors import ApiError
from study.participation.devices import device_class, requirements, shortfalls
from study.progress import study_progress
from study.settings import SettingsError, StudySettings
from study.tables import Participant, Response, Study, Trial
from study.validation import Screen

IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
ANDROID_PHONE = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/124.0.0.0 Mobile Safari/537.36")
FIREFOX_ANDROID_PHONE = "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0"
SAMSUNG_PHONE = ("Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36")
IPAD = ("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1")
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/124.0.0.0 Safari/537.36")
FIREFOX_ANDROID_TABLET = "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0"
KINDLE = ("Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Silk/124.2.1 like Chrome/124.0.6367.179 Safari/537.36")
CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/124.0.0.0 Safari/537.36")
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
SAFARI_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
              "Gecko) Version/17.4.1 Safari/605.1.15")


@pytest.mark.parametrize(("ua", "device"), [
    (IPHONE, "phone"), (ANDROID_PHONE, "phone"), (FIREFOX_ANDROID_PHONE, "phone"),
    (SAMSUNG_PHONE, "phone"), (IPAD, "tablet"), (ANDROID_TABLET, "tablet"),
    (FIREFOX_ANDROID_TABLET, "tablet"), (KINDLE, "tablet"), (CHROME_WINDOWS, "desktop"),
    (FIREFOX_LINUX, "desktop"), (SAFARI_MAC, "desktop"), (None, "desktop"), ("", "desktop"),
])
def test_device_class_from_real_user_agents(ua: str | None, device: str) -> None:
    assert device_class(ua) == device


def test_a_touch_report_makes_a_mac_an_ipad_but_never_a_phone_a_desktop() -> None:
    assert device_class(SAFARI_MAC, touch_points=5) == "tablet"  # iPadOS asks for desktop sites
    assert device_class(SAFARI_MAC, touch_points=0) == "desktop"
    assert device_class(IPHONE, touch_points=0) == "phone"  # the client cannot talk its way in
    assert device_class(CHROME_WINDOWS, touch_points=10) == "desktop"  # touch-screen laptops


def screen(vw: int, vh: int, sw: int | None = None, sh: int | None = None) -> Screen:
    return Screen(viewport_width=vw, viewport_height=vh, screen_width=sw, screen_height=sh)


def test_settings_defaults_let_every_device_in() -> None:
    d = StudySettings.from_dict({}).devices
    assert d.phones and d.tablets and d.min_viewport_width == 0 and d.min_screen_width is None
    assert requirements(d) == []
    assert shortfalls(d, "phone", None) == []


@pytest.mark.parametrize(("raw", "field"), [
    ({"devices": {"phones": "no"}}, "devices.phones"),
    ({"devices": {"min_viewport_width": -1}}, "devices.min_viewport_width"),
    ({"devices": {"min_viewport_height": 10_001}}, "devices.min_viewport_height"),
    ({"devices": {"min_viewport_width": 360.5}}, "devices.min_viewport_width"),
    ({"devices": {"min_screen_width": 1024}}, "devices.min_screen_height"),
    ({"devices": {"min_screen_height": 768}}, "devices.min_screen_width"),
    ({"devices": {"phone": False}}, "devices.phone"),
    ({"devices": True}, "devices"),
])
def test_device_settings_errors_name_the_field(raw: dict, field: str) -> None:
    with pytest.raises(SettingsError) as err:
        StudySettings.from_dict(raw)
    assert err.value.field == field


def test_device_settings_have_descriptions_for_the_form() -> None:
    from pydantic import TypeAdapter

    schema = TypeAdapter(StudySettings).json_schema()["$defs"]["DeviceSettings"]["properties"]
    assert set(schema) == {"phones", "tablets", "min_viewport_width", "min_viewport_height",
                           "min_screen_width", "min_screen_height"}
    assert all(len(p.get("description", "")) > 20 for p in schema.values())


def test_shortfalls_say_what_is_missing() -> None:
    d = StudySettings.from_dict({"devices": {"phones": False, "min_viewport_width": 800,
                                             "min_viewport_height": 600, "min_screen_width": 1024,
                                             "min_screen_height": 768}}).devices
    assert requirements(d) == ["a computer or tablet (not a phone)",
                               "a browser window of at least 800 × 600 pixels",
                               "a screen of at least 1024 × 768 pixels"]
    assert shortfalls(d, "desktop", screen(1200, 700, 1280, 800)) == []
    # The screen check ignores orientation; the window check does not.
    assert shortfalls(d, "tablet", screen(1000, 700, 800, 1280)) == []
    phone = shortfalls(d, "phone", screen(390, 844, 390, 844))
    assert [f.field for f in phone] == ["User-Agent", "screen.viewport_width",
                                        "screen.screen_width"]
    assert "this device is a phone" in phone[0].reason
    assert "this window is 390 × 844 pixels" in phone[1].reason
    assert [f.field for f in shortfalls(d, "desktop", screen(900, 500, 1280, 800))] == [
        "screen.viewport_height"]
    with pytest.raises(ApiError) as err:
        shortfalls(d, "desktop", None)
    assert err.value.status == 400 and err.value.field == "screen"
    with pytest.raises(ApiError) as err:
        shortfalls(d, "desktop", screen(1200, 700))
    assert err.value.field == "screen.screen_width"


def test_only_tablets_refused() -> None:
    d = StudySettings.from_dict({"devices": {"tablets": False}}).devices
    assert shortfalls(d, "phone", None) == [] and shortfalls(d, "desktop", None) == []
    assert "not a tablet" in shortfalls(d, "tablet", None)[0].reason


def _counts(app: Flask, slug: str) -> tuple[list[Participant], int, int]:
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        study_id = s.scalar(select(Study.id).where(Study.slug == slug))
        people = list(s.scalars(select(Participant).where(Participant.study_id == study_id)
                                .order_by(Participant.id)))
        n_trials = s.scalar(select(func.count()).select_from(Trial).join(Participant)
                            .where(Participant.study_id == study_id))
        n_responses = s.scalar(select(func.count()).select_from(Response).join(Participant)
                               .where(Participant.study_id == study_id))
        return people, n_trials, n_responses


def test_a_phone_on_a_study_without_phones_is_screened_out(app: Flask, make_study) -> None:
    slug = make_study(task="clickme", n_main=2, settings={"devices": {"phones": False}})
    with Session(app.extensions["sqlalchemy_engine"]) as s:
        s.get(Study, s.scalar(select(Study.id).where(Study.slug == slug))).screened_out_code = "SCR33N"
        s.commit()
    url = f"/api/v1/studies/{slug}/participants"
    body = {"consent": True, "platform": "prolific", "PROLIFIC_PID": "PHONE1", "SESSION_ID": "SE"}
    phone = app.test_client()
    page = phone.get(f"/s/{slug}?PROLIFIC_PID=PHONE1&SESSION_ID=SE", headers={"User-Agent": IPHONE})
    assert page.status_code == 200 and "a computer or tablet (not a phone)" in page.text

    res = phone.post(url, json=body, headers={"User-Agent": IPHONE})
    assert res.status_code == 403
    assert res.get_json()["error"]["field"] == "User-Agent"
    assert "this device is a phone" in res.get_json()["error"]["message"]
    people, n_trials, n_responses = _counts(app, slug)
    assert [(p.status, p.external_id, p.n_trials) for p in people] == [("screened_out", "PHONE1", 0)]
    assert n_trials == 0 and n_responses == 0

    # The study's page says why and sends the participant back with the screen-out code.
    page = phone.get(f"/s/{slug}")
    assert page.status_code == 403
    assert "this device is a phone" in page.text and "SCR33N" in page.text
    assert "https://app.prolific.com/submissions/complete?cc=SCR33N" in page.text
    assert phone.get(f"/s/{slug}/task").status_code == 302  # no task page
    token = people[0].token
    trial = phone.get("/api/v1/participant/trial", headers={"X-Participant-Token": token})
    assert trial.status_code == 403
    done = phone.post("/api/v1/participant/complete", headers={"X-Participant-Token": token})
    assert done.status_code == 403
    # The same platform id cannot start again, on this device or another.
    again = app.test_client().post(url, json=body, headers={"User-Agent": CHROME_WINDOWS})
    assert again.status_code == 409
    back = app.test_client().get(f"/s/{slug}?PROLIFIC_PID=PHONE1", headers={"User-Agent": CHROME_WINDOWS})
    assert back.status_code == 403 and "SCR33N" in back.text

    # A computer takes part as usual.
    ok = app.test_client().post(url, json={**body, "PROLIFIC_PID": "DESK1"},
                                headers={"User-Agent": CHROME_WINDOWS})
    assert ok.status_code == 201
    people, n_trials, _ = _counts(app, slug)
    assert [p.status for p in people] == ["screened_out", "started"] and n_trials == 2 + 1 + 1
    with Session(app.extensions["sqlalchemy_engine"]) as s:  # what the researcher's page counts
        (progress,) = study_progress(s, [people[0].study_id]).values()
    assert progress.screened_out == 1 and progress.in_progress == 1


def test_a_small_window_is_screened_out_and_a_missing_report_refused(app: Flask, make_study) -> None:
    slug = make_study(task="realfake", n_main=2,
                      settings={"devices": {"min_viewport_width": 800, "min_viewport_height": 500}})
    url = f"/api/v1/studies/{slug}/participants"
    client = app.test_client()
    missing = client.post(url, json={"consent": True}, headers={"User-Agent": CHROME_WINDOWS})
    assert missing.status_code == 400 and missing.get_json()["error"]["field"] == "screen"
    bad = client.post(url, json={"consent": True, "screen": {"viewport_width": "wide",
                                                              "viewport_height": 600}})
    assert bad.status_code == 400
    assert bad.get_json()["error"]["field"] == "screen.viewport_width"
    small = client.post(url, json={"consent": True, "screen": {"viewport_width": 700,
                                                                "viewport_height": 600}},
                        headers={"User-Agent": CHROME_WINDOWS})
    assert small.status_code == 403
    assert small.get_json()["error"]["field"] == "screen.viewport_width"
    page = client.get(f"/s/{slug}")
    assert page.status_code == 403 and "this window is 700 × 600 pixels" in page.text
    assert "Thank you for your interest" in page.text  # direct: no platform to go back to
    large = app.test_client().post(url, json={"consent": True, "screen": {
        "viewport_width": 1200, "viewport_height": 800}}, headers={"User-Agent": CHROME_WINDOWS})
    assert large.status_code == 201
    people, _, n_responses = _counts(app, slug)
    assert [p.status for p in people] == ["screened_out", "started"] and n_responses == 0
