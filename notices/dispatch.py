"""Delivering queued notices: enrich each stored context with names, render it, send it, record it — in batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from notices.channels import DeliveryError, FileChannel, SmtpChannel, Undeliverable
from notices.contexts import CONTEXT_MODELS
from notices.message import build_message, message_bytes
from notices.render import make_environment, render_notice
from states import codes
from states import member as member_machine
from states.keys import secret_key
from states.models import Appraisal, Branch, Campaign, Notice, Person
from states.settings import Settings

RETRYABLE = ("pending", "failed")
# What a phase asks of a member, in the notice that opens it: the member's own conditions.
NOT_ASKED = {"branch", "member_meeting_ballot", "approval", "publicity", "qualified", "followup"}
# Notices about a member (their typed context declares one): the recipient, unless the stored context names another.
MEMBER_EVENTS = frozenset(event for event, model in CONTEXT_MODELS.items() if "member" in model.model_fields)


@dataclass
class DispatchResult:
    sent: int = 0
    failed: int = 0
    undeliverable: int = 0
    errors: list[str] | None = None


class Enricher:
    """Turns a stored context (ids and figures) into the typed context a template renders (names, labels)."""

    def __init__(self, session: Session, codes_key: Callable[[], bytes] | None = None) -> None:
        self.session = session
        self._codes_key = codes_key
        self._key: bytes | None = None
        self._people: dict[str, Person | None] = {}
        self._branches: dict[str, Branch | None] = {}
        self._campaigns: dict[str, Campaign | None] = {}

    def person(self, member_id: str) -> Person:
        if member_id not in self._people:
            self._people[member_id] = self.session.get(Person, member_id)
        found = self._people[member_id]
        if found is None:
            raise LookupError(f"unknown person {member_id}")
        return found

    def preload(self, ids: set[str]) -> None:
        missing = [i for i in ids if i not in self._people]
        for person in self.session.scalars(select(Person).where(Person.member_id.in_(missing))):
            self._people[person.member_id] = person

    def preload_batch(self, notices: list[Notice]) -> None:
        """Everything a batch's contexts name, in a few queries; what an earlier batch loaded is kept."""
        people: set[str] = set()
        branches: set[str] = set()
        for notice in notices:
            people.add(notice.recipient_id)
            stored = notice.context
            if stored.get("member_id"):
                people.add(stored["member_id"])
            if stored.get("branch_id"):
                branches.add(stored["branch_id"])
            for rating in stored.get("ratings") or ():
                people.add(rating["member_id"])
            for lag in stored.get("lagging") or ():
                branches.add(lag["branch_id"])
        self.preload(people)
        for notice in notices:
            if notice.event in MEMBER_EVENTS and not notice.context.get("branch_id"):
                found = self._people.get(self.subject(notice))
                if found is not None and found.branch_id:
                    branches.add(found.branch_id)
        missing = [b for b in branches if b not in self._branches]
        if missing:
            for branch in self.session.scalars(select(Branch).where(Branch.branch_id.in_(missing))):
                self._branches[branch.branch_id] = branch
        keys = [k for k in {n.campaign_key for n in notices} if k not in self._campaigns]
        if keys:
            for campaign in self.session.scalars(select(Campaign).where(Campaign.key.in_(keys))):
                self._campaigns[campaign.key] = campaign

    @staticmethod
    def subject(notice: Notice) -> str:
        """The member a member notice is about: the one its context names, else its recipient."""
        return str(notice.context.get("member_id") or notice.recipient_id)

    def branch(self, branch_id: str) -> dict[str, str]:
        if branch_id not in self._branches:
            self._branches[branch_id] = self.session.get(Branch, branch_id)
        found = self._branches[branch_id]
        return {"branch_id": branch_id, "name": found.name if found else branch_id}

    def campaign(self, key: str) -> Campaign:
        if key not in self._campaigns:
            self._campaigns[key] = self.session.get(Campaign, key)
        found = self._campaigns[key]
        if found is None:
            raise LookupError(f"unknown campaign {key}")
        return found

    def code(self, purpose: str, campaign: str, subject: str, person: str, variant: str = "") -> str:
        """The recipient's one-time code, computed now from the key (the database holds only its subject)."""
        if self._key is None:
            if self._codes_key is None:
                raise LookupError("no key for one-time codes")
            self._key = self._codes_key()
        return codes.code_for(self._key, purpose, campaign, subject, person, variant)

    def member(self, member_id: str) -> dict[str, str]:
        return {"member_id": member_id, "name": self.person(member_id).name}

    def context(self, notice: Notice) -> dict[str, Any]:
        stored = dict(notice.context)
        recipient = self.person(notice.recipient_id)
        campaign = self.campaign(notice.campaign_key)
        out: dict[str, Any] = {
            "recipient": {
                "member_id": recipient.member_id, "name": recipient.name, "email": recipient.email,
                "locale": recipient.locale,
            },
            "campaign": {"key": campaign.key, "title": campaign.title, "timezone": campaign.timezone},
        }
        if notice.event in MEMBER_EVENTS:
            member = self.subject(notice)
            out["member"] = self.member(member)
            branch_id = stored.get("branch_id") or self.person(member).branch_id
            if branch_id:
                out["branch"] = self.branch(branch_id)
            out["to_secretary"] = bool(stored.get("to_secretary", member != notice.recipient_id))
        elif stored.get("branch_id"):
            out["branch"] = self.branch(stored["branch_id"])
        for name in ("phase", "deadline", "days_before", "level", "days_stuck", "stuck_members", "members_short",
                     "rating",
                     "ballot_date", "rated_members", "counts", "publicity_ends", "day", "members", "branches",
                     "stuck"):
            if name in stored:
                out[name] = stored[name]
        if "figures" in stored:
            out["unmet"] = [
                {"condition": c, "have": f.get("have"), "need": f.get("need")}
                for c, f in stored["figures"].items()
                if not f.get("ok")
            ]
        event = notice.event
        if event == "phase_started":
            edge = member_machine.advance_edge(stored["phase"])
            asks = [c for c in (edge.conditions if edge else ()) if c not in NOT_ASKED]
            thresholds = {"study_hours": campaign.study_hours, "concentrated_days": campaign.concentrated_days}
            out["asks"] = asks
            out["needs"] = {c: thresholds.get(c, 1) for c in asks}
        elif event == "publicity_started":
            out["ratings"] = [{**r, "name": self.person(r["member_id"]).name} for r in stored["ratings"]]
        elif event == "rating_final":
            appraisal = self.session.get(Appraisal, (notice.campaign_key, self.subject(notice)))
            out["excellent"] = bool(appraisal and appraisal.excellent and stored["rating"] == "qualified")
        elif event == "daily_digest":
            out["lagging"] = [{**lag, "name": self.branch(lag["branch_id"])["name"]} for lag in stored.get("lagging", [])]
        elif event == "oath_ceremony":
            out["phase"] = "pledge"
        elif event == "approval_requested" and "meeting_id" in stored:
            subject = codes.ballot_subject(stored["branch_id"], stored["meeting_id"])
            out["codes"] = {
                decision: self.code("approval", campaign.key, subject, recipient.member_id, decision)
                for decision in ("approve", "reject")
            }
        elif event == "action_code":
            out["purpose"], out["day"], out["request"] = stored["purpose"], stored["day"], stored["request"]
            out["code"] = self.code(stored["purpose"], campaign.key, stored["subject"], recipient.member_id)
        # Only what the event's typed context declares: the stored context may carry more (e.g. the phase).
        declared = CONTEXT_MODELS[event].model_fields
        return {name: value for name, value in out.items() if name in declared}


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Notice).where(Notice.status.in_(RETRYABLE))) or 0


def open_channel(settings: Settings, channel: str) -> FileChannel | SmtpChannel:
    if channel == "file":
        return FileChannel(settings.outbox_dir)
    if channel == "smtp":
        return SmtpChannel(
            settings.smtp_host, settings.smtp_port, settings.smtp_user, settings.smtp_password, settings.smtp_from,
            tls=settings.smtp_tls, ca_file=str(settings.smtp_ca_file) if settings.smtp_ca_file else None,
        )
    raise ValueError(f"unknown channel {channel!r} (file or smtp)")


def dispatch(
    engine: Engine,
    settings: Settings,
    channel: str = "file",
    at: dt.datetime | None = None,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
) -> DispatchResult:
    """Deliver every pending (or earlier failed) notice once; each batch's outcome is recorded as it finishes.

    A notice is marked delivered only once the channel holds it: for SMTP, once the server has taken it; for
    files, once the batch's files and their directory entries are fsynced (one directory fsync per batch).
    """
    at = at or dt.datetime.now(dt.UTC)
    env = make_environment()
    result = DispatchResult(errors=[])
    last_id = 0
    enricher: Enricher | None = None
    with open_channel(settings, channel) as sender:
        while True:
            with Session(engine, expire_on_commit=False) as session, session.begin():
                notices = list(
                    session.scalars(
                        select(Notice)
                        .where(Notice.status.in_(RETRYABLE), Notice.id > last_id)
                        .order_by(Notice.id)
                        .limit(batch)
                    )
                )
                if not notices:
                    break
                last_id = notices[-1].id
                # One enricher for the whole dispatch: people, branches and campaigns are looked up once.
                if enricher is None:
                    enricher = Enricher(session, codes_key=lambda: secret_key(settings, codes.KEY_NAME))
                enricher.session = session
                enricher.preload_batch(notices)
                outcome: dict[str, list[int]] = {"sent": [], "undeliverable": []}
                writing: list[tuple[Notice, Future[None]]] = []

                def fail(notice: Notice, error: Exception) -> None:
                    # Recorded on the notice and tried again next time; the others go on.
                    notice.status, notice.attempts = "failed", notice.attempts + 1
                    reason = " ".join(str(error).split())[:2000]
                    notice.last_error = reason
                    result.failed += 1
                    result.errors.append(f"{notice.key}: {reason[:300]}")  # type: ignore[union-attr]

                for notice in notices:
                    try:
                        context = enricher.context(notice)
                        recipient = context["recipient"]
                        rendered = render_notice(env, notice.event, recipient["locale"], context)
                        parts = (notice.key, notice.event, settings.smtp_from, recipient["name"], recipient["email"])
                        # The message build_message makes, written out directly (None: take the full path).
                        data = message_bytes(*parts, rendered, sent_at=at)
                        if isinstance(sender, FileChannel):
                            message: EmailMessage | bytes = (
                                data if data is not None else build_message(*parts, rendered, sent_at=at)
                            )
                            writing.append((notice, sender.submit(notice.key, message)))
                        else:
                            if not recipient["email"]:
                                raise Undeliverable(f"{notice.key}: the recipient has no e-mail address")
                            if data is not None:
                                sender.send_bytes(notice.key, data, [recipient["email"]])
                            else:
                                sender.send(notice.key, build_message(*parts, rendered, sent_at=at))
                            outcome["sent"].append(notice.id)
                    except Undeliverable:
                        outcome["undeliverable"].append(notice.id)
                    except (DeliveryError, LookupError, ValueError) as error:
                        fail(notice, error)
                if writing:
                    written = []
                    for notice, future in writing:
                        try:
                            future.result()
                            written.append(notice)
                        except DeliveryError as error:
                            fail(notice, error)
                    try:
                        sender.sync()  # type: ignore[union-attr]
                        outcome["sent"] += [n.id for n in written]
                    except DeliveryError as error:
                        for notice in written:
                            fail(notice, error)
                for status, ids in outcome.items():
                    if ids:
                        session.execute(
                            update(Notice)
                            .where(Notice.id.in_(ids))
                            .values(status=status, delivered_at=at, attempts=Notice.attempts + 1, last_error=None)
                            .execution_options(synchronize_session=False)
                        )
                result.sent += len(outcome["sent"])
                result.undeliverable += len(outcome["undeliverable"])
            if progress:
                progress(len(notices))
    return result
