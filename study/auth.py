"""Researcher accounts: hashed passwords, log in / log out, and the `login_required` guard.

The logged-in researcher's id lives in the signed session cookie under `session["researcher_id"]`
(the participant side's preview mode reads the same key). Passwords are stored only as werkzeug
hashes (scrypt by default). After MAX_FAILED_LOGINS wrong passwords in a row an account is locked
for LOCK_SECONDS, also for the right password; the count and the lock are columns of the
researcher's row, so the limit holds across server workers and hosts.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import jsonify, redirect, request, session, url_for
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from study.tables import LoginFailure, Researcher, utcnow

SESSION_KEY = "researcher_id"
MIN_PASSWORD_LENGTH = 8
MAX_FAILED_LOGINS = 5
LOCK_SECONDS = 300
# Per client address, over all accounts (guessing one password across many emails):
MAX_FAILURES_PER_ADDRESS = 20
ADDRESS_WINDOW_SECONDS = 600
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# A fixed hash checked when the email is unknown, so that a login takes the same time either way.
_DUMMY_HASH = generate_password_hash("not-a-real-password")

F = TypeVar("F", bound=Callable[..., Any])


class AccountError(ValueError):
    """Bad input for an account; `field` names the offending field (email or password)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def normalise_email(email: str) -> str:
    """Lower-cased, stripped email; raises AccountError("email") when it is not an address."""
    email = (email or "").strip().lower()
    if not _EMAIL.match(email) or len(email) > 255:
        raise AccountError("email", "must be an email address like name@example.org")
    return email


def create_researcher(db: Session, email: str, password: str) -> Researcher:
    """Add a researcher with a hashed password (caller commits); refuses duplicates and short
    passwords with an AccountError naming the field."""
    email = normalise_email(email)
    if len(password or "") < MIN_PASSWORD_LENGTH:
        raise AccountError("password", f"must have at least {MIN_PASSWORD_LENGTH} characters")
    if db.scalar(select(Researcher.id).where(Researcher.email == email)) is not None:
        raise AccountError("email", f"a researcher with email {email} already exists")
    researcher = Researcher(email=email, password_hash=generate_password_hash(password))
    db.add(researcher)
    db.flush()
    return researcher


def authenticate(db: Session, email: str, password: str) -> Researcher | None:
    """The researcher whose email and password match, else None (same work either way)."""
    try:
        email = normalise_email(email)
    except AccountError:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    researcher = db.scalar(select(Researcher).where(Researcher.email == email))
    if researcher is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(researcher.password_hash, password or ""):
        return None
    return researcher


@dataclass(frozen=True)
class LoginResult:
    """A login attempt: the researcher on success; `retry_after` seconds when locked out."""

    researcher: Researcher | None
    retry_after: int | None = None


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:  # SQLite gives back naive UTC
        value = value.replace(tzinfo=dt.UTC)
    return value


def _address_retry_after(db: Session, address: str, now: dt.datetime) -> int | None:
    """Seconds until `address` may try again, or None while it is under the limit."""
    since = now - dt.timedelta(seconds=ADDRESS_WINDOW_SECONDS)
    n, oldest = db.execute(
        select(func.count(), func.min(LoginFailure.at)).where(
            LoginFailure.address == address, LoginFailure.at > since
        )
    ).one()
    if n < MAX_FAILURES_PER_ADDRESS:
        return None
    return max(1, math.ceil((_aware(oldest) - since).total_seconds()))


def _record_failure(db: Session, address: str | None, now: dt.datetime) -> None:
    if address is None:
        return
    since = now - dt.timedelta(seconds=ADDRESS_WINDOW_SECONDS)
    db.execute(delete(LoginFailure).where(LoginFailure.address == address, LoginFailure.at <= since))
    db.execute(insert(LoginFailure).values(address=address[:64], at=now))


def attempt_login(db: Session, email: str, password: str, address: str | None = None) -> LoginResult:
    """Check a login and keep count (commits): wrong passwords add to the researcher's failure
    count, which locks the account at MAX_FAILED_LOGINS; a locked account is refused without
    looking at the password; a success resets the count. Independently, a client `address`
    with MAX_FAILURES_PER_ADDRESS wrong logins (any emails) in ADDRESS_WINDOW_SECONDS is refused."""
    now = utcnow()
    if address is not None:
        wait = _address_retry_after(db, address[:64], now)
        if wait is not None:
            return LoginResult(None, retry_after=wait)
    try:
        key = normalise_email(email)
    except AccountError:
        key = None
    row = db.scalar(select(Researcher).where(Researcher.email == key)) if key else None
    if row is not None:
        locked = _aware(row.locked_until)
        if locked is not None and locked > now:
            return LoginResult(None, retry_after=max(1, math.ceil((locked - now).total_seconds())))
    researcher = authenticate(db, email, password)
    if researcher is None:
        _record_failure(db, address, now)
    if row is None:
        db.commit()
        return LoginResult(None)
    if researcher is not None:
        db.execute(update(Researcher).where(Researcher.id == row.id).values(failed_logins=0, locked_until=None))
        db.commit()
        return LoginResult(researcher)
    # Counted in SQL (failed_logins + 1) so that concurrent workers do not lose a failure.
    db.execute(update(Researcher).where(Researcher.id == row.id).values(failed_logins=Researcher.failed_logins + 1))
    failures = db.scalar(select(Researcher.failed_logins).where(Researcher.id == row.id))
    if failures >= MAX_FAILED_LOGINS:
        until = now + dt.timedelta(seconds=LOCK_SECONDS)
        db.execute(update(Researcher).where(Researcher.id == row.id).values(failed_logins=0, locked_until=until))
    db.commit()
    return LoginResult(None)


def log_in(researcher: Researcher) -> None:
    """Start a fresh session for `researcher` (clearing the old one avoids session fixation)."""
    session.clear()
    session[SESSION_KEY] = researcher.id
    session.permanent = True


def log_out() -> None:
    session.clear()


def current_researcher_id() -> int | None:
    value = session.get(SESSION_KEY)
    return value if isinstance(value, int) else None


def safe_next(target: str | None) -> str | None:
    """`target` if it is a path on this site (no scheme, no host), else None: no open redirect."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" or request.path.endswith(".json")


def login_required(view: F) -> F:
    """Guard a researcher view: HTML requests go to the login page, JSON/API requests get 401."""

    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_researcher_id() is None:
            if _wants_json() or request.method not in ("GET", "HEAD"):
                body = {"error": {"message": "log in as a researcher first", "field": None}}
                return jsonify(body), 401
            return redirect(url_for("researcher.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
