"""The durable inbox (`bot.inbox`, `workflows.inbox`): stored once, handled
once — a failure inside the handling transaction undoes its effects and the
update is handled again, whole; an update handled before a crash is only
answered from its stored replies; a redelivery is not stored twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.inbox import Inbox
from handlers.messages import Incoming, Reply
from models import InboxStatus, InboxUpdate, Invite, Member
from tests.conftest import Org
from workflows import accounts, inbox
from workflows.context import Context
from workflows.inbox import Stored
from workflows.invites import create_invite

PLATFORM_USER = 424242


def now() -> datetime:
    return datetime.now(UTC)


class Recorder:
    """A channel's handler: `/start CODE` from the stored payload, through
    the inbox's transaction; what it would send is recorded."""

    def __init__(self) -> None:
        self.answers: list[list[Reply]] = []
        self.inbox: Inbox | None = None
        self.fail_after_handling = 0

    async def __call__(self, item: Stored) -> None:
        assert self.inbox is not None
        incoming = Incoming.from_text("telegram", str(PLATFORM_USER), str(PLATFORM_USER),
                                      str(item.payload["text"]),
                                      delivery_id=item.platform_id)
        replies = await self.inbox.handle(item, incoming)
        if self.fail_after_handling:
            self.fail_after_handling -= 1
            raise ConnectionError("the process died before answering")
        self.answers.append(replies)


def run_until_answered(ctx: Context, recorder: Recorder, payloads: list[tuple[str, str]]
                       ) -> None:
    async def scenario() -> None:
        worker = Inbox(ctx, "telegram", recorder, now)
        recorder.inbox = worker
        for platform_id, text in payloads:
            await worker.store(platform_id, str(PLATFORM_USER), {"text": text})
        worker.start()
        try:
            while await asyncio.to_thread(_open, ctx):
                await asyncio.sleep(0.05)
        finally:
            await worker.stop()

    asyncio.run(scenario())


def _open(ctx: Context) -> int:
    with Session(ctx.engine) as session:
        return len([r for r in session.exec(select(InboxUpdate))
                    if r.answered_at is None and r.status is not InboxStatus.FAILED])


def bound(ctx: Context, code: str) -> int | None:
    with Session(ctx.engine) as session:
        member = session.exec(select(Member).where(Member.code == code)).one()
    account = accounts.account_of(ctx, member.id or 0, "telegram")
    return int(account) if account is not None else None


def test_a_failure_inside_the_transaction_undoes_it_and_it_is_handled_once(
        ctx: Context, org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    with Session(ctx.engine) as session:
        code = session.get(Member, org.caller).code  # type: ignore[union-attr]
    invite = create_invite(ctx, code, None, now()).code
    real_complete = inbox.complete
    failures = [1]

    def complete_failing_once(*args: object, **kwargs: object) -> bool:
        if failures:
            failures.pop()
            raise RuntimeError("crash after the effects, before the commit")
        return real_complete(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(inbox, "complete", complete_failing_once)
    recorder = Recorder()
    run_until_answered(ctx, recorder, [("1001", f"/start {invite}")])
    # Handled twice, committed once: the invite is used and the account bound,
    # and the member got one welcome (not "that code was already used").
    assert bound(ctx, code) == PLATFORM_USER
    assert len(recorder.answers) == 1
    with Session(ctx.engine) as session:
        used = session.exec(select(Invite).where(Invite.code == invite)).one()
        [row] = session.exec(select(InboxUpdate)).all()
    assert used.used_at is not None and row.status is InboxStatus.DONE and row.attempts == 1


def test_handled_before_a_crash_means_answered_from_the_stored_replies(
        ctx: Context, org: Org) -> None:
    with Session(ctx.engine) as session:
        code = session.get(Member, org.caller).code  # type: ignore[union-attr]
    invite = create_invite(ctx, code, None, now()).code
    recorder = Recorder()
    recorder.fail_after_handling = 1  # committed, then the answer failed
    run_until_answered(ctx, recorder, [("2001", f"/start {invite}"), ("2001", "again")])
    assert bound(ctx, code) == PLATFORM_USER
    # The retry sent the stored welcome: the invite was not redeemed again.
    [welcome] = recorder.answers
    assert "already" not in welcome[0].text and code not in ("",)
    with Session(ctx.engine) as session:
        rows = session.exec(select(InboxUpdate)).all()
    assert len(rows) == 1  # the redelivery (same update id) was not stored again


def test_a_chat_is_handled_in_order(ctx: Context, org: Org) -> None:
    recorder = Recorder()
    run_until_answered(ctx, recorder, [(str(n), f"/help {n}") for n in range(5)])
    with Session(ctx.engine) as session:
        rows = session.exec(select(InboxUpdate).order_by(InboxUpdate.id)).all()  # type: ignore[arg-type]
    handled = [r.handled_at for r in rows]
    assert all(h is not None for h in handled) and handled == sorted(handled)  # type: ignore[type-var]


def test_a_slow_handler_keeps_its_claim_while_a_second_worker_waits(
        ctx: Context, org: Org) -> None:
    """The lease is renewed while an update is in hand: a handler that takes
    several leases long is not claimed by the other worker (without renewal
    it would be handled twice)."""
    handled: list[str] = []

    async def scenario() -> None:
        workers: list[Inbox] = []

        def slow(number: int) -> Callable[[Stored], Awaitable[None]]:
            async def handle(item: Stored) -> None:
                handled.append(item.platform_id)
                await asyncio.sleep(1.5)
                await workers[number].skip(item)
            return handle

        workers.extend(Inbox(ctx, "telegram", slow(n), now, lease=timedelta(seconds=0.45))
                       for n in range(2))
        await workers[0].store("slow-1", "chat", {"text": "slow"})
        for worker in workers:
            worker.start()
        try:
            while await asyncio.to_thread(_open, ctx) and len(handled) < 2:
                await asyncio.sleep(0.05)
        finally:
            for worker in workers:
                await worker.stop()

    asyncio.run(scenario())
    assert handled == ["slow-1"]
