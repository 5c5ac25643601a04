"""Three `siyu serve` processes on one PostgreSQL database share the inbox: started
together on an empty database all come up; each update is handled once, a member's in
the order she wrote them, so opt-out sequences end right; a process killed with its
claims in hand has them taken over by the others."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from storage.engine import create_database_engine, session_factory
from storage.models import InboxEntry, Interaction, Member, MemberTag, MemberIdentity, Tag
from tests.conftest import PG_URL, _reset_postgres, write_config
from tests.test_processes import free_port, read_until, siyu

pytestmark = pytest.mark.skipif(
    not PG_URL, reason="several processes share a database only on PostgreSQL: set SIYU_TEST_PG_URL"
)

LEASE_SECONDS = 2  # short, so a killed process's claims are taken over within the test


@asynccontextmanager
async def serving(tmp_path: Path, name: str, url: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """One `siyu serve` process with its own port and config directory."""
    port = free_port()
    directory = tmp_path / name
    directory.mkdir()
    config = write_config(directory, url, f"[server]\nport = {port}\n")
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace(f'url = "{url}"', f'url = "{url}"\ninbox_lease_seconds = {LEASE_SECONDS}', 1), encoding="utf-8")
    async with siyu(["serve", "--config", str(config)], cwd=directory) as process:
        yield process, f"http://127.0.0.1:{port}"


async def post(client: aiohttp.ClientSession, base: str, member: str, text: str, message_id: str) -> None:
    body = {"member": member, "text": text, "id": message_id}
    async with client.post(f"{base}/sandbox/messages", json=body) as response:
        assert response.status == 202, await response.text()


async def write_in_turn(client: aiohttp.ClientSession, bases: list[str], member: str, texts: list[str]) -> None:
    """One member writes her messages one after another, each to the next process."""
    tag = member.encode().hex()[:40]
    for n, text in enumerate(texts):
        await post(client, bases[n % len(bases)], member, text, f"{tag}-{n}")


async def wait_until_handled(url: str, expected: int, timeout: float = 120) -> None:
    engine = create_database_engine(url)
    try:
        async with asyncio.timeout(timeout):
            while True:
                async with session_factory(engine)() as session:
                    done = (await session.execute(
                        select(func.count()).select_from(InboxEntry).where(InboxEntry.status == "done")
                    )).scalar_one()
                if done >= expected:
                    return
                await asyncio.sleep(0.2)
    finally:
        await engine.dispose()


async def member_states(url: str) -> dict[str, tuple[int, bool, list[str]]]:
    """Per sandbox member: hits of the bread tag, opted out, her messages in handling order."""
    engine = create_database_engine(url)
    try:
        async with session_factory(engine)() as session:
            people = dict((await session.execute(
                select(MemberIdentity.external_id, Member.id)
                .join(Member, Member.id == MemberIdentity.member_id)  # type: ignore[arg-type]
                .where(MemberIdentity.platform == "sandbox")
            )).all())
            hits = dict((await session.execute(
                select(MemberTag.member_id, MemberTag.hit_count)
                .join(Tag, Tag.id == MemberTag.tag_id)  # type: ignore[arg-type]
                .where(Tag.name == "面包控")
            )).all())
            opted = {mid for (mid,) in await session.execute(select(Member.id).where(Member.opted_out_at.is_not(None)))}  # type: ignore[union-attr]
            said: dict[int, list[str]] = {}
            for mid, text in await session.execute(
                select(Interaction.member_id, Interaction.text)
                .where(Interaction.kind == "message_in").order_by(Interaction.id)  # type: ignore[arg-type]
            ):
                said.setdefault(mid, []).append(text or "")
    finally:
        await engine.dispose()
    return {name: (hits.get(mid, 0), mid in opted, said.get(mid, [])) for name, mid in people.items()}


async def test_three_processes_started_together_on_an_empty_database_share_the_inbox(tmp_path: Path) -> None:
    assert PG_URL is not None
    _reset_postgres(PG_URL)  # empty: the three race to migrate it
    async with AsyncExitStack() as stack:
        started = [await stack.enter_async_context(serving(tmp_path, f"p{n}", PG_URL)) for n in range(3)]
        await asyncio.gather(*(read_until(process, "serving on") for process, _ in started))
        bases = [base for _, base in started]
        bread = [f"第{k}条：吐司" for k in range(1, 6)]
        plans = {f"面包{n}": bread for n in range(40)}
        plans |= {f"回来{n}": ["退订", "订阅"] for n in range(40)}
        plans |= {f"再走{n}": ["退订", "订阅", "退订"] for n in range(40)}
        async with aiohttp.ClientSession() as client:
            await asyncio.gather(*(write_in_turn(client, bases, m, texts) for m, texts in plans.items()))
        await wait_until_handled(PG_URL, sum(len(texts) for texts in plans.values()))
        for process, _ in started:
            process.send_signal(signal.SIGTERM)
        for process, _ in started:
            async with asyncio.timeout(30):
                assert await process.wait() == 0
    states = await member_states(PG_URL)
    # Each update handled once: five 吐司 messages are five hits, never more.
    assert {name: states[name][0] for name in plans if name.startswith("面包")} == {
        name: 5 for name in plans if name.startswith("面包")
    }
    # In the order she wrote them.
    assert all(states[name][2] == texts for name, texts in plans.items())
    # So opt-out sequences end where the member left them.
    assert [name for name in plans if name.startswith("回来") and states[name][1]] == []
    assert [name for name in plans if name.startswith("再走") and not states[name][1]] == []


async def test_a_killed_process_s_inbox_claims_are_taken_over(tmp_path: Path) -> None:
    assert PG_URL is not None
    _reset_postgres(PG_URL)
    engine = create_database_engine(PG_URL)
    plans = {f"会员{n}": [f"第{k}条：面包" for k in range(1, 11)] for n in range(60)}
    try:
        async with serving(tmp_path, "doomed", PG_URL) as (doomed, base):
            await read_until(doomed, "serving on")
            async with aiohttp.ClientSession() as client:
                writing = asyncio.gather(*(write_in_turn(client, [base], m, texts) for m, texts in plans.items()))
                async with asyncio.timeout(60):
                    while True:  # kill it while it holds claims on rows not yet handled
                        async with session_factory(engine)() as session:
                            held = set((await session.execute(select(InboxEntry.id).where(
                                InboxEntry.status == "pending", InboxEntry.claimed_by.is_not(None)  # type: ignore[union-attr]
                            ))).scalars())
                        if held:
                            break
                        await asyncio.sleep(0)
                doomed.send_signal(signal.SIGKILL)
                await doomed.wait()
                await asyncio.gather(writing, return_exceptions=True)  # the rest was refused
        async with session_factory(engine)() as session:
            stored = (await session.execute(select(func.count()).select_from(InboxEntry))).scalar_one()
            left = (await session.execute(select(InboxEntry.id, InboxEntry.claimed_by).where(
                InboxEntry.status == "pending", InboxEntry.claimed_by.is_not(None)  # type: ignore[union-attr]
            ))).all()
        held = {row_id for row_id, _ in left}
        dead_owners = {owner for _, owner in left}
        assert held, "the killed process held no claims: nothing to take over"
        async with AsyncExitStack() as stack:
            others = [await stack.enter_async_context(serving(tmp_path, f"heir{n}", PG_URL)) for n in range(2)]
            await asyncio.gather(*(read_until(process, "serving on") for process, _ in others))
            await wait_until_handled(PG_URL, stored)
            for process, _ in others:
                process.send_signal(signal.SIGTERM)
                async with asyncio.timeout(30):
                    assert await process.wait() == 0
        async with session_factory(engine)() as session:
            rows = (await session.execute(select(InboxEntry).where(InboxEntry.id.in_(held)))).scalars().all()  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
    assert rows and all(row.status == "done" and row.claimed_by not in dead_owners for row in rows)
    states = await member_states(PG_URL)
    for name, (hits, _, said) in states.items():
        written = said  # what was stored (the kill refused the rest) was handled once, in order
        assert written == plans[name][: len(written)]
        assert hits == len(written)
