"""`siyu backup` while a real `siyu serve` takes callbacks, and `siyu restore`: every
callback acknowledged before the backup began is in it, and a running server's database
is never overwritten."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time
from contextlib import closing
from pathlib import Path

import aiohttp
import pytest

from bot.cli.main import main
from storage.migrate import upgrade
from tests.conftest import eventually, write_config
from tests.test_processes import free_port, read_until, siyu


async def run_siyu(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def inbox_keys(database: Path) -> set[str]:
    with closing(sqlite3.connect(database)) as connection:
        return {key for (key,) in connection.execute("SELECT key FROM inbox")}


async def test_a_backup_under_load_holds_every_acknowledged_callback(tmp_path: Path) -> None:
    database = tmp_path / "siyu.db"
    port = free_port()
    config = write_config(tmp_path, f"sqlite:///{database}", f"\n[server]\nport = {port}\n")
    base = f"http://127.0.0.1:{port}"
    acked: list[tuple[float, str]] = []
    stop = asyncio.Event()

    async def member_writes(client: aiohttp.ClientSession, n: int) -> None:
        count = 0
        while not stop.is_set():
            count += 1
            body = {"member": f"会员{n}", "text": f"第{count}条", "id": f"m{n}-{count}"}
            async with client.post(f"{base}/sandbox/messages", json=body) as response:
                assert response.status == 202
                acked.append((time.monotonic(), (await response.json())["key"]))

    async with siyu(["serve", "--config", str(config)], cwd=tmp_path) as server:
        await read_until(server, "/healthz")
        async with aiohttp.ClientSession() as client:
            writers = [asyncio.create_task(member_writes(client, n)) for n in range(8)]
            await eventually(lambda: _true(len(acked) >= 100), timeout=60)
            began = time.monotonic()
            code, out, err = await run_siyu("backup", str(tmp_path / "copy.db"), "--config", str(config))
            ended, count = time.monotonic(), len(acked)
            await eventually(lambda: _true(len(acked) >= count + 20), timeout=60)  # and more after it
            stop.set()
            await asyncio.gather(*writers)
        assert code == 0, err
        assert "backed up" in out and "inbox rows" in out
        # While the server runs, its database is not overwritten.
        code, _, err = await run_siyu("restore", str(tmp_path / "copy.db"), "--config", str(config))
        assert code == 1 and "is in use" in err and "stop every siyu process" in err
        server.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.wait(), 30) == 0
    before = {key for at, key in acked if at < began}
    after = {key for at, key in acked if at > ended}
    assert len(before) >= 100 and after, (len(before), len(after))
    assert after <= inbox_keys(database)  # the live database had everything
    code, out, err = await run_siyu("restore", str(tmp_path / "copy.db"), "--config", str(config))
    assert code == 0, err
    restored = inbox_keys(database)
    assert before <= restored  # every callback acknowledged before the backup began
    assert not after & restored  # and the database really is the backup now
    assert list(tmp_path.glob("siyu.db.before-restore-*"))  # the old one kept


async def _true(value: bool) -> bool:
    return value


def test_backup_and_restore_refuse_what_they_must(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    database = tmp_path / "siyu.db"
    upgrade(f"sqlite:///{database}")
    config = str(write_config(tmp_path, f"sqlite:///{database}"))
    assert main(["backup", str(tmp_path / "a.db"), "--config", config]) == 0
    assert main(["backup", str(tmp_path / "a.db"), "--config", config]) == 1
    assert "a.db exists" in capsys.readouterr().err
    assert main(["backup", str(tmp_path / "a.db"), "--force", "--config", config]) == 0
    (tmp_path / "junk.db").write_bytes(os.urandom(4096))
    assert main(["restore", str(tmp_path / "junk.db"), "--config", config]) == 1
    assert "is not a siyu database" in capsys.readouterr().err
    assert main(["restore", str(tmp_path / "nothing.db"), "--config", config]) == 1
    assert "no backup at" in capsys.readouterr().err
    (tmp_path / "pg").mkdir()
    pg = str(write_config(tmp_path / "pg", "postgresql://siyu@127.0.0.1:5432/siyu"))
    assert main(["backup", str(tmp_path / "b.db"), "--config", pg]) == 2
    assert "pg_dump" in capsys.readouterr().err


def test_db_downgrade_undoes_migrations_for_a_rollback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from storage.migrate import applied_heads, head_revision, pending_revisions

    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    config = str(write_config(tmp_path, url))
    assert main(["db", "upgrade", "--config", config]) == 0
    assert f"its newest migration: {head_revision()}" in capsys.readouterr().out
    assert main(["db", "downgrade", "-1", "--config", config]) == 0  # one step back, whatever the newest is
    (step_back,) = applied_heads(url)
    assert f"database is at migration {step_back}" in capsys.readouterr().out
    assert pending_revisions(url) == [head_revision()]
    assert main(["db", "upgrade", "--config", config]) == 0 and pending_revisions(url) == []
