"""One-time codes: a decision taken through the UI names a person, and that person's code proves it was them.

A code is the HMAC-SHA256, under the `codes` key (`states/keys.py`: the environment or a 0600 file, never the
database, never Prefect), of what it decides — a purpose, the campaign, the subject (a ballot and the decision
taken on it; a retry's exact request) — and the person, shown as 8 digits. Nothing stores it: the notice that
delivers it to the person carries only the subject, and the dispatcher computes the code when it renders the
notice. A code works once: `code_use` records its spending (one row per purpose, campaign, subject and person, so
two submissions at once cannot both win) and each wrong try; after `MAX_FAILURES` wrong tries the person is locked
out of that decision. The comparison is constant-time (`hmac.compare_digest`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from enum import Enum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from states import outbox
from states.clock import as_utc
from states.db import changed, insert_ignoring_duplicates
from states.labels import DEFAULT_LOCALE, Locale
from states.models import CodeUse

DIGITS = 8
MAX_FAILURES = 5
KEY_NAME = "codes"
PURPOSES = ("approval", "retry")


class Verdict(Enum):
    VERIFIED = "verified"
    WRONG = "wrong"
    SPENT = "spent"
    LOCKED = "locked"


REFUSALS: dict[Verdict, dict[Locale, str]] = {
    Verdict.WRONG: {"zh-CN": "{person} 的一次性验证码不正确", "en": "wrong one-time code for {person}"},
    Verdict.SPENT: {"zh-CN": "{person} 办理此项决定的一次性验证码已经用过",
                    "en": "{person}'s one-time code for this decision has been used already"},
    Verdict.LOCKED: {"zh-CN": f"{{person}} 已连续 {MAX_FAILURES} 次输错验证码，不能再办理此项决定",
                     "en": f"{{person}} is locked out of this decision after {MAX_FAILURES} wrong codes"},
}


def _encoded(*fields: str) -> bytes:
    # Each field length-prefixed: ("a:b", "c") and ("a", "b:c") are different messages.
    out = bytearray()
    for field in fields:
        data = field.encode("utf-8")
        out += len(data).to_bytes(4, "big") + data
    return bytes(out)


def code_for(key: bytes, purpose: str, campaign: str, subject: str, person: str, variant: str = "") -> str:
    """The person's code for this decision (`variant`: e.g. approve or reject, so a code cannot be turned into
    the other decision)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown code purpose {purpose!r}")
    digest = hmac.new(key, _encoded(purpose, campaign, subject, person, variant), hashlib.sha256).digest()
    return f"{int.from_bytes(digest[:8], 'big') % 10**DIGITS:0{DIGITS}d}"


def ballot_subject(branch_id: str, meeting_id: int | str) -> str:
    """An approval's subject: the branch and the ballot (member meeting) awaiting the decision."""
    return f"{branch_id}:ballot-{meeting_id}"


def retry_subject(day: dt.date, members: list[str], branches: list[str], all_stuck: bool, reason: str) -> str:
    """A retry's subject: the day and the exact request (whom, and why), so a code serves that request only."""
    request = _encoded(
        ",".join(sorted(set(members))), ",".join(sorted(set(branches))), "all" if all_stuck else "", reason.strip()
    )
    return f"{day.isoformat()}:{hashlib.sha256(request).hexdigest()[:32]}"


def normalized(given: str) -> str:
    """What a person types: spaces and dashes between digit groups are allowed."""
    return "".join(c for c in given.strip() if c not in " -")


def redeem(
    session: Session, key: bytes, *, purpose: str, campaign: str, subject: str, person: str, given: str,
    at: dt.datetime, attempt: str, variant: str = "",
) -> Verdict:
    """Check a submitted code in the caller's transaction. VERIFIED spends it; WRONG records a wrong try under
    `attempt` (the same attempt replayed counts once). The caller commits either way — a wrong try must count
    though nothing else is recorded — and records its decision in the same transaction as a VERIFIED code, so the
    code is spent exactly when the decision stands."""
    if not attempt:
        raise ValueError("an attempt needs an id")
    mine = (
        CodeUse.purpose == purpose, CodeUse.campaign_key == campaign, CodeUse.subject == subject,
        CodeUse.person_id == person,
    )
    if session.scalar(select(CodeUse.outcome).where(*mine, CodeUse.attempt == "")) is not None:
        return Verdict.SPENT
    wrong = session.scalar(select(func.count()).select_from(CodeUse).where(*mine, CodeUse.outcome == "wrong")) or 0
    if wrong >= MAX_FAILURES:
        return Verdict.LOCKED
    row = {"purpose": purpose, "campaign_key": campaign, "subject": subject, "person_id": person, "at": as_utc(at)}
    expected = code_for(key, purpose, campaign, subject, person, variant)
    if not hmac.compare_digest(normalized(given).encode(), expected.encode()):
        session.execute(insert_ignoring_duplicates(session, CodeUse).values(**row, attempt=attempt, outcome="wrong"))
        return Verdict.WRONG
    # The spending row's key is the same for every attempt: of two submissions at once, one inserts it, the other
    # finds it there (and, on PostgreSQL, waits for the first to commit before it knows).
    spent = changed(session.execute(insert_ignoring_duplicates(session, CodeUse).values(**row, attempt="", outcome="used")))
    return Verdict.VERIFIED if spent == 1 else Verdict.SPENT


def refusal(verdict: Verdict, person: str, locale: Locale = DEFAULT_LOCALE) -> str:
    """The one line a refused code gets (never the code), Chinese unless asked otherwise."""
    return REFUSALS[verdict][locale].format(person=person)


def queue_retry_code(
    session: Session, campaign: str, person: str, day: dt.date, members: list[str], branches: list[str],
    all_stuck: bool, reason: str, at: dt.datetime,
) -> str:
    """Queue, to `person` alone, the code for this retry request today (one notice per request and day, however
    often asked); returns the subject. The notice stores the request, not the code."""
    subject = retry_subject(day, members, branches, all_stuck, reason)
    outbox.queue(
        session, event="action_code", campaign=campaign, recipient_id=person, subject="retry", occasion=subject,
        context={
            "purpose": "retry", "subject": subject, "day": day.isoformat(),
            "request": {"members": sorted(set(members)), "branches": sorted(set(branches)), "all_stuck": all_stuck,
                        "reason": reason.strip()},
        },
        at=at,
    )
    return subject
