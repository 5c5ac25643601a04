"""Benchmark: what a process pays to follow configuration edited in the console.

Every process asks `change_stamp` (the highest `config_versions` id) every 2 s; when it
moved, it reads every document's newest version, validates them over the file's settings
and rebuilds the handlers' config, the renderer and the delivery policy (in a thread).
Measured on a SQLite file migrated to the newest schema, with `--versions` rows spread
over the ten documents (a long-lived brand's history), with `config.example.toml`:

- **stamp**: one `change_stamp` in a new session, the cost paid every 2 s when nothing
  changed (and **query**: the same query again in that session, without the checkout);
- **read**: `current_documents` (newest version of each document);
- **rebuild**: `apply_documents` + `derive` (validation, keyword automaton, renderer).

    .venv/bin/python bench/config_reload.py [--versions 20000] [--repeat 500]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert  # noqa: E402

from bot.settings.documents import DOCUMENTS, apply_documents, documents_of  # noqa: E402
from bot.settings.model import load_settings  # noqa: E402
from bot.shared.live_config import derive  # noqa: E402
from storage.config_docs import canonical, change_stamp, current_documents  # noqa: E402
from storage.config_models import ConfigVersion  # noqa: E402
from storage.engine import create_database_engine, session_factory  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import utcnow  # noqa: E402


def micros(samples: list[float]) -> str:
    samples = sorted(samples)
    return (f"p50 {statistics.median(samples) * 1e6:,.0f} µs, "
            f"p99 {samples[int(len(samples) * 0.99) - 1] * 1e6:,.0f} µs")


async def main(versions: int, repeat: int) -> None:
    settings = load_settings(Path(__file__).resolve().parent.parent / "config.example.toml")
    bodies = documents_of(settings)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        engine = create_database_engine(url)
        sessions = session_factory(engine)
        names = list(DOCUMENTS)
        rows = [{"name": names[n % len(names)], "version": n // len(names) + 1,
                 "body": canonical(bodies[names[n % len(names)]]), "source": "console", "author": "ops", "note": "",
                 "created_at": utcnow()} for n in range(versions)]
        async with sessions() as session:
            for start in range(0, len(rows), 1000):
                await session.execute(insert(ConfigVersion), rows[start:start + 1000])
            await session.commit()
        stamp, alone, read, rebuild = [], [], [], []
        for _ in range(repeat):
            async with sessions() as session:
                began = time.perf_counter()
                await change_stamp(session)
                stamp.append(time.perf_counter() - began)
                began = time.perf_counter()
                await change_stamp(session)
                alone.append(time.perf_counter() - began)
                began = time.perf_counter()
                documents = await current_documents(session)
                read.append(time.perf_counter() - began)
            began = time.perf_counter()
            derive(apply_documents(settings, {n: d.body for n, d in documents.items()}))
            rebuild.append(time.perf_counter() - began)
        await engine.dispose()
    print(f"{versions:,} versions over {len(DOCUMENTS)} documents, {repeat} runs")
    print(f"stamp   {micros(stamp)} (with the session's connection and BEGIN)")
    print(f"query   {micros(alone)} (the same query again in that session)")
    print(f"read    {micros(read)}")
    print(f"rebuild {micros(rebuild)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=500)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.versions, arguments.repeat))
