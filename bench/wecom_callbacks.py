"""Benchmark: signed, encrypted WeCom callbacks acknowledged per second by one `siyu serve`
process (verify, decrypt, parse, durable inbox insert), against a bare aiohttp handler
that only answers "success", on the same machine in the same run.

The siyu servers reach the project's fake WeCom cloud (bench/fake_cloud.py, a process of
its own on wrk's core), as a deployment reaches WeCom: with `role = "all"` the staff
members' messages are handled and answered, and those answers are sent, not retried
against an address that refuses them.

    .venv/bin/python bench/wecom_callbacks.py [--seconds 10] [--connections 64] [--rounds 3]
        [--before CHECKOUT]

Needs `wrk` (apt-get install wrk). The server runs on CPU 0 and wrk on CPU 1 when
`taskset` is available, so the two do not share a core. `--before` also runs the siyu
servers of another checkout of the project (e.g. `git worktree add ../before main`) in
the same rounds, so a change is measured against the code before it on the same machine
in the same minutes.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.platforms.wecom.crypto import CallbackCrypto, sha1_signature  # noqa: E402

TOKEN, CORP_ID = "QDG6eK", "wwbenchcorp0001"
CLOUD_SECRET = "bench-cloud-secret"
STAFF = 50  # the staff members whose app messages are replayed
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pinned(cpu: int, command: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1 else command


def prepare_requests(path: Path, count: int) -> None:
    """Distinct staff app messages, each signed and encrypted as WeCom would send it."""
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    with path.open("w") as out:
        for n in range(count):
            plain = (
                f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><FromUserName><![CDATA[staff{n % STAFF}]]></FromUserName>"
                f"<CreateTime>{1700000000 + n}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
                f"<Content><![CDATA[今天的面包几点出炉？第{n}条]]></Content><MsgId>{7000000000000000 + n}</MsgId><AgentID>1000002</AgentID></xml>"
            )
            encrypted = crypto.encrypt(plain.encode())
            timestamp, nonce = str(1700000000 + n), str(n)
            signature = sha1_signature(TOKEN, timestamp, nonce, encrypted)
            query = urlencode({"msg_signature": signature, "timestamp": timestamp, "nonce": nonce})
            body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"
            out.write(f"/wecom/callback?{query}\t{body}\n")


def wait_until_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def run_wrk(port: int, requests: Path, seconds: int, connections: int) -> dict[str, float]:
    output = subprocess.run(
        pinned(1, ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(BENCH / "wrk_replay.lua"),
                   f"http://127.0.0.1:{port}", "--", str(requests)]),
        capture_output=True, text=True, check=True,
    ).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"some requests were refused:\n{output}")
    figures = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}  # type: ignore[union-attr]
    figures["requests"] = float(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    for percent in ("50", "99"):
        value, unit = re.search(rf"\s{percent}%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
        figures[f"p{percent}_ms"] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return figures


def serve(command: list[str], port: int, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(pinned(0, command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=cwd,
                               env=env)
    wait_until_ready(port)
    if os.environ.get("SIYU_BENCH_PROFILE"):  # py-spy profile of the server under load
        subprocess.Popen(["py-spy", "record", "-o", os.environ["SIYU_BENCH_PROFILE"], "-d", "6", "-p", str(process.pid),
                          "-f", "speedscope"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="each server once a round, in a shuffled order")
    parser.add_argument("--seed", type=int, default=None, help="fix the order of the rounds")
    parser.add_argument("--before", type=Path, default=None,
                        help="another checkout whose siyu servers run in the same rounds (the code before a change)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("this benchmark needs wrk: apt-get install wrk")
    if args.before is not None and not (args.before / "bot" / "__main__.py").is_file():
        sys.exit(f"--before {args.before}: not a checkout of siyu (no bot/__main__.py)")
    roles = ("webhook", "all")
    names = ("bare", *roles, *((f"before-{role}" for role in roles) if args.before else ()))
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    stored: dict[str, list[str]] = {name: [] for name in names if name != "bare"}
    shuffler = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        requests = work / "requests.txt"
        prepare_requests(requests, 25_000 * args.seconds)
        for round_number in range(args.rounds):
            # A fixed order lets a warming or cooling machine favour whoever runs first.
            order = shuffler.sample(names, len(names))
            print(f"round {round_number + 1}: {', '.join(order)}", flush=True)
            for name in order:
                if name == "bare":
                    runs[name].append(measure_bare(requests, args.seconds, args.connections))
                else:
                    role = name.removeprefix("before-")
                    checkout = args.before if name.startswith("before-") else BENCH.parent
                    figures, count = measure_siyu(work / f"{name}-{round_number}", role, requests, args.seconds,
                                                  args.connections, checkout)
                    runs[name].append(figures)
                    stored[name].append(f"{count} of {figures['requests']:.0f}")
    median = {name: {key: statistics.median(r[key] for r in rounds) for key in rounds[0]} for name, rounds in runs.items()}
    baseline = median["bare"]
    print(f"\n{'median of ' + str(args.rounds) + ' rounds':34}{'req/s':>9}{'ratio':>7}{'p50 ms':>9}{'p99 ms':>9}")
    rows = [("bare aiohttp (answers success)", "bare"), ("siyu serve, role=webhook", "webhook"),
            ("siyu serve, role=all", "all")]
    if args.before:
        rows += [("before: role=webhook", "before-webhook"), ("before: role=all", "before-all")]
    for label, name in rows:
        figures = median[name]
        print(f"{label:34}{figures['rps']:>9.0f}{figures['rps'] / baseline['rps']:>7.2f}"
              f"{figures['p50_ms']:>9.2f}{figures['p99_ms']:>9.2f}")
    for name in stored:
        ratios = ", ".join(f"{r['rps'] / b['rps']:.2f}" for r, b in zip(runs[name], runs["bare"]))
        print(f"{name}: ratio per round {ratios}; acknowledged callbacks found in the inbox: {'; '.join(stored[name])}")
    print(f"{args.connections} connections, {args.seconds} s each, wrk on its own core")


def measure_bare(requests: Path, seconds: int, connections: int) -> dict[str, float]:
    port = free_port()
    bare = subprocess.Popen(pinned(0, [sys.executable, str(BENCH / "bare_server.py"), str(port)]), stdout=subprocess.DEVNULL)
    wait_until_ready(port)
    try:
        return run_wrk(port, requests, seconds, connections)
    finally:
        bare.terminate()
        bare.wait(30)


def measure_siyu(work: Path, role: str, requests: Path, seconds: int, connections: int,
                 checkout: Path) -> tuple[dict[str, float], int]:
    work.mkdir()
    port = free_port()
    config = work / "siyu.toml"
    cloud = subprocess.Popen(pinned(1, [sys.executable, str(BENCH / "fake_cloud.py"), CORP_ID, CLOUD_SECRET,
                                        *(f"staff{n}" for n in range(STAFF))]), stdout=subprocess.PIPE, text=True)
    assert cloud.stdout is not None
    cloud_url = cloud.stdout.readline().strip()
    if not cloud_url.startswith("http"):
        raise RuntimeError("the fake WeCom cloud did not start (bench/fake_cloud.py)")
    config.write_text(
        f'[storage]\nurl = "sqlite:///siyu.db"\n[server]\nport = {port}\nrole = "{role}"\n[log]\nlevel = "WARNING"\n'
        f'[platforms.wecom]\ncorp_id = "{CORP_ID}"\nagent_id = 1000002\ntoken = "{TOKEN}"\n'
        f'encoding_aes_key = "{AES_KEY}"\nsecret = "{CLOUD_SECRET}"\napi_base = "{cloud_url}"\n'
    )
    # The checkout's own code, whichever one this interpreter has installed (`-m` puts
    # the working directory first on the path: the run's own folder holds no code).
    siyu = serve([sys.executable, "-m", "bot", "serve", "--config", str(config)], port, cwd=work,
                 env={**os.environ, "PYTHONPATH": str(checkout.resolve())})
    try:
        figures = run_wrk(port, requests, seconds, connections)
    finally:
        siyu.terminate()
        siyu.wait(30)
        cloud.terminate()
        cloud.wait(30)
    stored = sqlite3.connect(work / "siyu.db").execute("select count(*) from inbox").fetchone()[0]
    return figures, stored


if __name__ == "__main__":
    main()
