"""A small client of Prolific's researcher API (https://docs.prolific.com/api-reference).

Only what the study app needs: the account (to check the token), a study with its completion
codes, a study's submissions (every page), approving a submission, and the two bonus calls.
The token comes from the environment (PROLIFIC_API_TOKEN) and travels in the documented header
`Authorization: Token <token>`; PROLIFIC_API_URL points the client elsewhere (the tests' local
stand-in). Every failure is a `ProlificError` whose message is one line that says what failed
and what to do, never a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

TOKEN_ENV = "PROLIFIC_API_TOKEN"
URL_ENV = "PROLIFIC_API_URL"
DEFAULT_URL = "https://api.prolific.com/api/v1/"
# Prolific's ids are 24 hex digits; anything outside this never reaches a URL path.
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_PAGES = 1_000  # a next link that never ends stops here
# Submission statuses as the API spells them (SubmissionShortStatus).
PAID_OR_PENDING = ("APPROVED", "AWAITING REVIEW")


class ProlificError(RuntimeError):
    """A Prolific call failed; str() is one line for the researcher. `status` is the HTTP
    status when Prolific answered, None when it could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CompletionCode:
    """One entry of a study's `completion_codes`: the code, its code_type, its actions."""

    code: str
    code_type: str
    actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProlificStudy:
    id: str
    name: str
    status: str
    completion_codes: tuple[CompletionCode, ...]


@dataclass(frozen=True)
class Submission:
    """One row of a study's submission list: `id` is the SESSION_ID the participant brought,
    `participant_id` their PROLIFIC_PID."""

    id: str
    participant_id: str
    status: str
    study_code: str | None = None


def checked_id(value: str, what: str) -> str:
    """`value` if it can be a Prolific id, else ProlificError naming `what`."""
    if not isinstance(value, str) or not _ID.match(value):
        raise ProlificError(f"{what}: {value!r} is not a Prolific id (letters, digits, - and _)")
    return value


class ProlificClient:
    """Calls to one Prolific API base URL with one token."""

    def __init__(self, token: str, base_url: str = DEFAULT_URL, *, timeout: float = 20.0) -> None:
        if not token or not token.strip():
            raise ProlificError(f"{TOKEN_ENV} is not set: create an API token in Prolific "
                                "(API Tokens page) and export it")
        if not base_url.startswith(("https://", "http://")):
            raise ProlificError(f"{URL_ENV}: must be an http(s) URL (got {base_url!r})")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._http = httpx.Client(
            headers={"Authorization": f"Token {token.strip()}", "Accept": "application/json"},
            timeout=timeout, follow_redirects=False,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProlificClient:
        """The client the environment configures (PROLIFIC_API_TOKEN, PROLIFIC_API_URL)."""
        env = os.environ if environ is None else environ
        return cls(env.get(TOKEN_ENV, ""), env.get(URL_ENV) or DEFAULT_URL)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ProlificClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls

    def me(self) -> dict[str, Any]:
        """The token's account (GET users/me/): the cheapest check that the token works."""
        return self._call("GET", "users/me/", what="account")

    def study(self, study_id: str) -> ProlificStudy:
        """A study and its completion codes (GET studies/{id}/)."""
        body = self._call("GET", f"studies/{checked_id(study_id, 'study id')}/", what="study")
        codes = tuple(
            CompletionCode(str(c.get("code", "")), str(c.get("code_type", "")),
                           tuple(str(a.get("action", "")) for a in c.get("actions") or []
                                 if isinstance(a, dict)))
            for c in body.get("completion_codes") or [] if isinstance(c, dict)
        )
        return ProlificStudy(str(body.get("id", study_id)), str(body.get("name", "")),
                             str(body.get("status", "")), codes)

    def submissions(self, study_id: str) -> list[Submission]:
        """Every submission of a study (GET studies/{id}/submissions/), following the
        `_links.next.href` of each page until it is null."""
        url: str | None = self._url(f"studies/{checked_id(study_id, 'study id')}/submissions/")
        out: list[Submission] = []
        for _ in range(MAX_PAGES):
            if url is None:
                return out
            body = self._call("GET", url, what="study")
            for row in body.get("results") or []:
                out.append(Submission(str(row.get("id", "")), str(row.get("participant_id", "")),
                                      str(row.get("status", "")), row.get("study_code")))
            url = self._next(body)
        raise ProlificError(f"Prolific's submission list did not end after {MAX_PAGES} pages")

    def submission(self, submission_id: str) -> dict[str, Any]:
        """One submission in detail (GET submissions/{id}/), with its `bonus_payments`."""
        return self._call("GET", f"submissions/{checked_id(submission_id, 'submission id')}/",
                          what="submission")

    def approve(self, submission_id: str) -> dict[str, Any]:
        """Approve a submission (POST submissions/{id}/transition/ {"action": "APPROVE"}); the
        call is idempotent at Prolific, so a retry does no harm."""
        path = f"submissions/{checked_id(submission_id, 'submission id')}/transition/"
        return self._call("POST", path, json={"action": "APPROVE"}, what="submission")

    def set_up_bonuses(self, study_id: str, amounts: list[tuple[str, Decimal]]) -> str:
        """Set up (not pay) bonuses (POST submissions/bonus-payments/) for (submission id,
        amount in the study's currency) pairs; the bulk payment's id."""
        csv = "\n".join(f"{checked_id(sid, 'submission id')},{amount:.2f}" for sid, amount in amounts)
        body = self._call("POST", "submissions/bonus-payments/",
                          json={"study_id": checked_id(study_id, "study id"), "csv_bonuses": csv},
                          what="study")
        bulk_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(bulk_id, str) or not _ID.match(bulk_id):
            raise ProlificError("Prolific set up the bonuses but its answer carried no bulk payment id")
        return bulk_id

    def pay_bonuses(self, bulk_id: str) -> None:
        """Pay a set-up bulk bonus (POST bulk-bonus-payments/{id}/pay/). Not idempotent at
        Prolific: each call pays again, so the caller records it (study/platforms/bonuses.py)."""
        self._call("POST", f"bulk-bonus-payments/{checked_id(bulk_id, 'bulk payment id')}/pay/",
                   json={}, what="bulk bonus payment")

    # ------------------------------------------------------------------ plumbing

    def _url(self, path: str) -> str:
        return urljoin(self.base_url, path)

    def _next(self, body: dict[str, Any]) -> str | None:
        """The next page's URL, which must be on the API's own host (the token goes with it)."""
        link = ((body.get("_links") or {}).get("next") or {}).get("href")
        if not link:
            return None
        url = urljoin(self.base_url, str(link))
        if urlsplit(url).netloc != urlsplit(self.base_url).netloc:
            raise ProlificError(f"Prolific's next page is on another host ({urlsplit(url).netloc}); "
                                "not following it with the token")
        return url

    def _call(self, method: str, path_or_url: str, *, json: Any = None, what: str) -> Any:
        url = path_or_url if path_or_url.startswith(("http://", "https://")) else self._url(path_or_url)
        shown = f"{method} {urlsplit(url).path}"
        try:
            resp = self._http.request(method, url, json=json)
        except httpx.TimeoutException:
            raise ProlificError(f"{shown}: Prolific did not answer in time ({self.base_url}); "
                                "try again later") from None
        except httpx.HTTPError as exc:
            raise ProlificError(f"{shown}: cannot reach Prolific at {self.base_url} "
                                f"({type(exc).__name__})") from None
        if resp.status_code >= 400:
            raise ProlificError(f"{shown}: {_refusal(resp, what)}", resp.status_code)
        if not resp.content:
            return {}
        try:
            return resp.json()
        except ValueError:
            raise ProlificError(f"{shown}: Prolific answered {resp.status_code} with a body that "
                                "is not JSON", resp.status_code) from None


def _refusal(resp: httpx.Response, what: str) -> str:
    """One line for an error answer: what the status means for the researcher, and Prolific's
    own detail when it gave one."""
    status = resp.status_code
    if status == 401:
        text = f"Prolific refused the API token (401); check {TOKEN_ENV}"
    elif status == 403:
        text = "the API token may not do this (403); use a token of the study's workspace"
    elif status == 404:
        text = f"Prolific has no such {what} (404)"
    elif status == 429:
        wait = resp.headers.get("Retry-After")
        text = "Prolific is limiting the request rate (429); try again " + (
            f"in {wait} s" if wait else "in a minute")
    elif status >= 500:
        text = f"Prolific had a server error ({status}); try again later"
    else:
        text = f"Prolific refused the request ({status})"
    detail = _detail(resp)
    return f"{text}: {detail}" if detail else text


def _detail(resp: httpx.Response) -> str:
    """Prolific's error detail ({"error": {"detail": ...}}), flattened to at most 200 characters."""
    try:
        body = resp.json()
    except ValueError:
        return ""
    err = body.get("error", body) if isinstance(body, dict) else body
    detail = err.get("detail", "") if isinstance(err, dict) else err
    text = " ".join(str(detail).split())
    return text[:200]
