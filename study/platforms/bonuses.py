"""Prolific bonuses through a ledger of our own, so that a retry never pays twice.

Prolific pays bonuses in two calls: set up (POST submissions/bonus-payments/, which pays
nothing) and pay (POST bulk-bonus-payments/{id}/pay/), which is documented as not idempotent.
Each intended bonus is one `BonusPayment` row with a unique key, and moves
intended -> set_up (with the bulk id) -> sent (committed just before the pay call) -> paid:

- a crash after the set-up: the rows are set_up, and the next run pays that bulk id once;
- Prolific refuses the pay call (an answer of 4xx): it did not pay; the rows go back to set_up;
- no answer, or a server error (5xx): the pay may have gone through. The rows stay sent and
  are never paid again by this module; the next run marks them paid once the submission's
  `bonus_payments` show the amount, and `release` (after the researcher has checked Prolific)
  puts them back to set_up.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from study.platforms.prolific import ProlificClient, ProlificError, checked_id
from study.tables import BonusPayment, utcnow

MAX_BONUS = Decimal("100")  # per bonus, in the study's currency: a typo of 150 for 1.50 stops here


class BonusError(ValueError):
    """A bonus file or request that cannot be taken; the message names the line or key."""


@dataclass(frozen=True)
class BonusLine:
    submission_id: str
    amount: Decimal


def parse_bonus_csv(text: str) -> list[BonusLine]:
    """Lines `submission_id,amount` (amount in the study's currency, e.g. 1.50); a header line
    `submission_id,amount` may come first. BonusError names the line at fault."""
    out: list[BonusLine] = []
    seen: set[str] = set()
    for n, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip():
            continue
        if n == 1 and row[0].strip().lower() == "submission_id":
            continue
        if len(row) != 2:
            raise BonusError(f"line {n}: expected submission_id,amount (got {len(row)} fields)")
        sid, raw = row[0].strip(), row[1].strip()
        try:
            checked_id(sid, "submission id")
        except ProlificError as exc:
            raise BonusError(f"line {n}: {exc}") from None
        try:
            amount = Decimal(raw)
        except InvalidOperation:
            raise BonusError(f"line {n}: amount {raw!r} is not a number") from None
        if not amount.is_finite() or amount <= 0 or amount > MAX_BONUS or amount != amount.quantize(Decimal("0.01")):
            raise BonusError(f"line {n}: amount must be above 0 and at most {MAX_BONUS}, "
                             f"in whole cents (got {raw})")
        if sid in seen:
            raise BonusError(f"line {n}: submission {sid} appears twice")
        seen.add(sid)
        out.append(BonusLine(sid, amount))
    if not out:
        raise BonusError("the file has no bonus lines")
    return out


def record_intended(s: Session, study_id: int, reason: str, lines: list[BonusLine]) -> int:
    """Add one ledger row per line under the key `reason:submission_id` and commit; a key
    already in the ledger adds nothing (the same file twice pays once). A key recorded with
    another amount is refused. Returns the number of rows added."""
    if not reason or len(reason) > 100 or ":" in reason:
        raise BonusError("reason: 1 to 100 characters, without ':'")
    keys = {f"{reason}:{line.submission_id}": line for line in lines}
    existing = {row.key: row for row in s.scalars(
        select(BonusPayment).where(BonusPayment.study_id == study_id, BonusPayment.key.in_(keys)))}
    for key, row in existing.items():
        if Decimal(row.amount) != keys[key].amount:
            raise BonusError(f"{key}: already recorded with amount {row.amount}, not "
                             f"{keys[key].amount}; use another --reason for a second bonus")
    added = [BonusPayment(study_id=study_id, key=key, submission_id=line.submission_id,
                          amount=f"{line.amount:.2f}") for key, line in keys.items() if key not in existing]
    s.add_all(added)
    s.commit()
    return len(added)


@dataclass
class PayRun:
    """What a run did: rows paid now, confirmed (sent earlier, found paid), left unconfirmed."""

    paid: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)


def pay_outstanding(s: Session, study_id: int, prolific_study_id: str,
                    client: ProlificClient) -> PayRun:
    """Pay every bonus of the study that the ledger has not recorded as paid or sent. A
    ProlificError stops the run after the ledger has recorded how far it got."""
    run = PayRun()
    confirm_sent(s, study_id, client, run)
    set_up_intended(s, study_id, prolific_study_id, client)
    bulk_ids = s.scalars(select(BonusPayment.bulk_id).distinct().where(
        BonusPayment.study_id == study_id, BonusPayment.state == "set_up")).all()
    for bulk_id in sorted(b for b in bulk_ids if b):
        run.paid += _pay(s, study_id, bulk_id, client)
    return run


def set_up_intended(s: Session, study_id: int, prolific_study_id: str,
                    client: ProlificClient) -> None:
    """Set up every intended bonus at Prolific in one bulk payment (pays nothing) and record its
    id. Should the record be lost, the rows stay intended and a new bulk is set up: an unpaid
    bulk at Prolific costs nothing."""
    rows = s.scalars(select(BonusPayment).where(BonusPayment.study_id == study_id,
                                                BonusPayment.state == "intended")
                     .order_by(BonusPayment.id)).all()
    if not rows:
        return
    bulk_id = client.set_up_bonuses(prolific_study_id,
                                    [(r.submission_id, Decimal(r.amount)) for r in rows])
    for r in rows:
        r.state, r.bulk_id, r.updated_at = "set_up", bulk_id, utcnow()
    s.commit()


def _pay(s: Session, study_id: int, bulk_id: str, client: ProlificClient) -> list[str]:
    in_bulk = (BonusPayment.study_id == study_id, BonusPayment.bulk_id == bulk_id)
    keys = s.scalars(select(BonusPayment.key).where(*in_bulk, BonusPayment.state == "set_up")).all()
    _move(s, in_bulk, "set_up", "sent")  # committed before the call that cannot be repeated
    try:
        client.pay_bonuses(bulk_id)
    except ProlificError as exc:
        if exc.status is not None and 400 <= exc.status < 500:
            _move(s, in_bulk, "sent", "set_up")  # refused: nothing was paid
            raise
        raise ProlificError(f"{exc} -- whether bulk {bulk_id} was paid is not known; it will not "
                            "be paid again (the next run checks the submissions' bonuses)",
                            exc.status) from None
    _move(s, in_bulk, "sent", "paid")
    return list(keys)


def _move(s: Session, where: tuple, old: str, new: str) -> None:
    s.execute(update(BonusPayment).where(*where, BonusPayment.state == old)
              .values(state=new, updated_at=utcnow()))
    s.commit()


def confirm_sent(s: Session, study_id: int, client: ProlificClient, run: PayRun) -> None:
    """Mark sent bonuses paid where the submission's `bonus_payments` (in cents) show them:
    each paid amount confirms one row of that submission and amount."""
    sent = s.scalars(select(BonusPayment).where(BonusPayment.study_id == study_id,
                                                BonusPayment.state == "sent")
                     .order_by(BonusPayment.id)).all()
    for sid in sorted({r.submission_id for r in sent}):
        shown = Counter(int(round(float(c))) for c in client.submission(sid).get("bonus_payments") or [])
        for r in s.scalars(select(BonusPayment).where(BonusPayment.study_id == study_id,
                                                      BonusPayment.submission_id == sid,
                                                      BonusPayment.state == "paid")):
            shown[_cents(r.amount)] -= 1  # already accounted for
        for r in (r for r in sent if r.submission_id == sid):
            if shown[_cents(r.amount)] > 0:
                shown[_cents(r.amount)] -= 1
                r.state, r.updated_at = "paid", utcnow()
                run.confirmed.append(r.key)
            else:
                run.unconfirmed.append(r.key)
    s.commit()


def release(s: Session, study_id: int, keys: list[str]) -> int:
    """Put sent bonuses back to set_up, once the researcher has seen at Prolific that they were
    not paid; the next run pays them. Returns how many rows moved."""
    moved = s.execute(update(BonusPayment).where(
        BonusPayment.study_id == study_id, BonusPayment.key.in_(keys), BonusPayment.state == "sent",
    ).values(state="set_up", updated_at=utcnow())).rowcount
    s.commit()
    return moved


def _cents(amount: str) -> int:
    return int((Decimal(amount) * 100).to_integral_value())
