"""docs/deploy.md's files, tested as far as this machine allows: nginx accepts the site
config and carries callbacks to a real siyu over TLS (and keeps /metrics in); systemd
accepts the units; the wheel holds everything and serves, with the Dockerfile's own
environment, user and health check; compose.yaml wires webhook, worker and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dockerfile_parse import DockerfileParser
from wechatpy.enterprise.crypto import WeChatCrypto

from bot.platforms.wecom.xml import parse_fields
from bot.settings.model import load_settings
from bot.shared.keys import SESSIONS
from bot.web.app import build_app
from storage.migrate import upgrade
from tests.conftest import eventually, start_server, write_config
from tests.fakes.wecom_cloud import FakeWeComCloud
from tests.wecom_harness import AES_KEY, CORP, TOKEN, Corp, contact_event, wecom_config

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "docs" / "deploy"
HOST = "siyu.example.com"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as systemd's EnvironmentFile= and compose's env_file read them."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key] = shlex.split(value)[0] if value else ""
    return found


# -- nginx ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def nginx() -> str:
    """Debian's nginx: found, or installed when this is a Debian machine we may change."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], capture_output=True, timeout=600,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None:
        pytest.skip("nginx is not installed and cannot be here (needs root and apt-get): "
                    "apt-get install nginx-light, or run .ci/run, which installs it")
    return found


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
            .sign(key, hashes.SHA256()))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return directory / "cert.pem", directory / "key.pem"


def nginx_config(directory: Path, http_port: int, https_port: int, upstreams: tuple[int, int]) -> Path:
    """docs/deploy/nginx.conf with this machine's ports, a self-signed certificate and
    files in `directory`, inside the smallest main configuration nginx runs with."""
    cert, key = self_signed(directory)
    site = (DEPLOY / "nginx.conf").read_text()
    for old, new in {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl http2;": f"listen 127.0.0.1:{https_port} ssl http2;",
        "listen [::]:80;": "", "listen [::]:443 ssl http2;": "",
        f"/etc/letsencrypt/live/{HOST}/fullchain.pem": str(cert),
        f"/etc/letsencrypt/live/{HOST}/privkey.pem": str(key),
        "/var/log/nginx/siyu.access.log": str(directory / "access.log"),
        "server 127.0.0.1:8081": f"server 127.0.0.1:{upstreams[0]}",
        "server 127.0.0.1:8082": f"server 127.0.0.1:{upstreams[1]}",
    }.items():
        assert old in site, old
        site = site.replace(old, new)
    (directory / "site.conf").write_text(site)
    temp = {name: directory / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    main = directory / "nginx.conf"
    main.write_text(
        f"daemon off;\npid {directory / 'nginx.pid'};\nerror_log {directory / 'error.log'};\n"
        "events { worker_connections 256; }\nhttp {\n"
        f"  client_body_temp_path {temp['body']};\n  proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {temp['fastcgi']};\n  uwsgi_temp_path {temp['uwsgi']};\n  scgi_temp_path {temp['scgi']};\n"
        f"  include {directory / 'site.conf'};\n}}\n"
    )
    return main


def test_nginx_accepts_the_site_config(nginx: str, tmp_path: Path) -> None:
    config = nginx_config(tmp_path, free_port(), free_port(), (8081, 8082))
    checked = subprocess.run([nginx, "-t", "-c", str(config), "-p", str(tmp_path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr


@pytest.fixture
async def behind_nginx(nginx: str, cloud: FakeWeComCloud, tmp_path: Path,
                       http: aiohttp.ClientSession) -> AsyncIterator[tuple[Corp, str]]:
    """A real siyu (trusting nginx's X-Forwarded-For, metrics on) behind the doc's nginx.
    The first upstream is a stopped webhook process: nginx must pass callbacks on."""
    url = f"sqlite:///{tmp_path / 'siyu.db'}"
    upgrade(url)
    extra = wecom_config(cloud.base_url) + '\n[metrics]\nenabled = true\n[server]\ntrusted_proxies = ["127.0.0.1"]\n'
    running = await start_server(build_app(load_settings(write_config(tmp_path, url, extra))), http)
    https_port = free_port()
    port = int(running.base.rsplit(":", 1)[1])
    (tmp_path / "nginx").mkdir()
    config = nginx_config(tmp_path / "nginx", free_port(), https_port, (free_port(), port))
    process = await asyncio.create_subprocess_exec(nginx, "-c", str(config), "-p", str(tmp_path / "nginx"))
    corp = Corp(cloud, running, running.app[SESSIONS])
    base = f"https://127.0.0.1:{https_port}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as client:
        async def answering() -> bool:
            try:
                async with client.get(f"{base}/nowhere", headers={"Host": HOST}) as response:
                    return response.status == 404
            except aiohttp.ClientError:
                return False

        await eventually(answering)
        yield corp, base
    process.terminate()
    await process.wait()
    await running.stop()


async def test_callbacks_reach_siyu_through_nginx_and_metrics_stay_inside(
    behind_nginx: tuple[Corp, str], caplog: pytest.LogCaptureFixture
) -> None:
    corp, base = behind_nginx
    headers = {"Host": HOST}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=False)) as client:
        # WeCom's URL verification, over TLS, through the proxy.
        timestamp, nonce = "1409659589", "263014780"
        reply = parse_fields(WeChatCrypto(TOKEN, AES_KEY, CORP).encrypt_message("4711", nonce, timestamp))
        query = {"msg_signature": reply["MsgSignature"], "timestamp": timestamp, "nonce": nonce, "echostr": reply["Encrypt"]}
        async with client.get(f"{base}/wecom/callback?{urlencode(query)}", headers=headers) as response:
            assert (response.status, await response.text()) == (200, "4711")
        # Callbacks are stored, though the first webhook process is down.
        for n in range(3):
            query, body = corp.envelope(contact_event("add_external_contact", f"wmNGINX000{n}"))
            async with client.post(f"{base}/wecom/callback?{urlencode(query)}", data=body, headers=headers) as response:
                assert response.status == 200
        assert await corp.inbox_rows() == 3
        # A forged one is refused, and siyu logs the client's address nginx passed on.
        with caplog.at_level(logging.WARNING, logger="bot.shared.callbacks"):
            async with client.post(f"{base}/wecom/callback?{urlencode({**query, 'msg_signature': '0' * 40})}",
                                   data=body, headers={**headers, "X-Forwarded-For": "203.0.113.5"}) as response:
                assert response.status == 403
        assert "from 203.0.113.5" in caplog.text
        # Bodies over [server] max_body_bytes stop at nginx.
        async with client.post(f"{base}/wecom/callback?{urlencode(query)}", data=b"x" * 300_000, headers=headers) as response:
            assert response.status == 413
        # /metrics and the sandbox are not served outside; /metrics is, on the process itself.
        for path in ("/metrics", "/sandbox", "/"):
            async with client.get(f"{base}{path}", headers=headers) as response:
                assert response.status == 404, path
        async with client.get(f"{corp.server.base}/metrics") as response:
            assert response.status == 200


# -- systemd -------------------------------------------------------------------------------

UNITS = {"siyu.service": "all", "siyu-worker.service": "worker", "siyu-webhook@.service": "webhook"}


def unit_environment(unit: str, instance: str = "8081") -> dict[str, str]:
    for line in (DEPLOY / unit).read_text().splitlines():
        if line.startswith("Environment="):
            return dict(item.split("=", 1) for item in shlex.split(line.removeprefix("Environment=").replace("%i", instance)))
    raise AssertionError(f"{unit} sets no Environment=")


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_each_systemd_unit_runs_siyu_serve_in_its_role_as_an_unprivileged_user(unit: str) -> None:
    text = (DEPLOY / unit).read_text()
    for line in ("User=siyu", "Restart=always", "EnvironmentFile=/etc/siyu/siyu.env", "KillSignal=SIGTERM",
                 "ExecStart=/opt/siyu/bin/siyu serve"):
        assert f"\n{line}\n" in text, line
    environment = unit_environment(unit)
    assert environment["SIYU_ROLE"] == UNITS[unit]
    # The doc's configuration, with the unit's environment and the example secrets, is valid.
    variables = {**env_file(DEPLOY / "siyu.env.example"), **environment}
    old = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        settings = load_settings(DEPLOY / "siyu.toml")
    finally:
        for name, value in old.items():
            os.environ.pop(name) if value is None else os.environ.__setitem__(name, value)
    assert settings.server.role == UNITS[unit] and settings.server.port == int(environment["SIYU_PORT"])
    assert settings.server.shutdown_timeout < float(text.split("TimeoutStopSec=")[1].split()[0])


@pytest.mark.parametrize("unit", sorted(p.name for p in DEPLOY.iterdir() if p.suffix in (".service", ".timer", ".target")))
def test_systemd_accepts_every_unit(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the units' syntax is not verified")
    siyu = Path(sys.executable).with_name("siyu")  # /opt/siyu/bin/siyu on a server
    for path in DEPLOY.iterdir():
        if path.suffix in (".service", ".timer", ".target"):
            name = path.name.replace("@.", "@8081.")
            (tmp_path / name).write_text(path.read_text().replace("/opt/siyu/bin/siyu", str(siyu)))
    verified = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / unit.replace("@.", "@8081."))],
                              capture_output=True, text=True, cwd=tmp_path)
    assert verified.returncode == 0 and verified.stderr.strip() == "", verified.stderr


# -- the wheel and the Dockerfile --------------------------------------------------------

@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--disable-pip-version-check",
                    "--wheel-dir", str(out), str(ROOT)], check=True, capture_output=True, timeout=600)
    (found,) = out.glob("siyu-*.whl")
    return found


def test_the_wheel_holds_everything_siyu_reads_at_run_time(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {str(path.relative_to(ROOT)) for pattern in (
        "storage/migrations/versions/*.py", "bot/console/templates/*.html", "bot/console/static/*",
        "bot/console/locale/*.toml", "content_templates/templates/**/*.j2", "bot/platforms/sandbox/*.html",
    ) for path in ROOT.glob(pattern)}
    assert shipped and not shipped - names, sorted(shipped - names)
    assert any(name.endswith("entry_points.txt") for name in names)


class Dockerfile:
    def __init__(self) -> None:
        parser = DockerfileParser(path=str(ROOT / "Dockerfile"))
        self.stages = [[]]  # type: list[list[dict[str, str]]]
        for instruction in parser.structure:
            if instruction["instruction"] == "COMMENT":
                continue
            if instruction["instruction"] == "FROM" and self.stages[-1]:
                self.stages.append([])
            self.stages[-1].append(instruction)
        self.runtime = self.stages[-1]

    def values(self, instruction: str) -> list[str]:
        return [i["value"] for i in self.runtime if i["instruction"] == instruction]

    def env(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for value in self.values("ENV"):
            found.update(dict(item.split("=", 1) for item in shlex.split(value.replace("\\\n", " "))))
        return found


def test_the_dockerfile_builds_from_the_wheel_and_runs_as_a_user_of_its_own() -> None:
    docker = Dockerfile()
    assert len(docker.stages) == 2 and docker.stages[0][0]["value"].startswith("python:3.11")
    assert any("pip wheel" in v for i in docker.stages[0] for v in [i["value"]] if i["instruction"] == "RUN")
    runs = docker.values("RUN")
    assert any("--no-index --find-links=/wheels siyu" in run for run in runs)  # offline, from the wheels
    (user,) = docker.values("USER")
    assert user not in ("root", "0") and any(f"useradd --system --uid 10001 --create-home --home-dir /var/lib/siyu {user}" in run
                                              for run in runs)
    assert docker.values("CMD") == ['["siyu", "serve"]'] and docker.values("STOPSIGNAL") == ["SIGTERM"]


def healthcheck_command() -> list[str]:
    (value,) = Dockerfile().values("HEALTHCHECK")
    return list(json.loads(value.split("CMD", 1)[1].strip()))


async def test_siyu_from_the_wheel_serves_with_the_dockerfiles_environment_and_passes_its_healthcheck(
    wheel: Path, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--disable-pip-version-check",
                    "--target", str(site), str(wheel)], check=True, capture_output=True, timeout=300)
    port = free_port()
    variables = {**env_file(DEPLOY / "siyu.env.example"), **Dockerfile().env(),
                 "SIYU_CONFIG": str(DEPLOY / "siyu.toml"), "SIYU_HOST": "127.0.0.1", "SIYU_PORT": str(port),
                 "SIYU_DATABASE_URL": f"sqlite:///{tmp_path / 'siyu.db'}",
                 "PYTHONPATH": str(site)}  # the wheel's copy of siyu comes first; its dependencies are ours
    environment = {**os.environ, **variables}
    check = healthcheck_command()
    check[0] = sys.executable  # `python` in the image
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import bot, sys; assert bot.__file__.startswith(sys.argv[1]); "
        "from bot.cli.main import main; sys.exit(main(['serve']))", str(site),
        env=environment, cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        async def healthy() -> bool:
            probe = await asyncio.create_subprocess_exec(*check, env=environment, stdout=asyncio.subprocess.DEVNULL,
                                                         stderr=asyncio.subprocess.DEVNULL)
            return await probe.wait() == 0

        await eventually(healthy, timeout=60)
    finally:
        server.terminate()
        output = (await server.communicate())[0].decode()
    assert server.returncode == 0, output
    assert not await healthy()  # a stopped server fails the check


# -- compose ---------------------------------------------------------------------------------

def test_compose_runs_migrations_then_webhook_and_worker_on_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "webhook", "worker"}
    assert services["postgres"]["healthcheck"]["test"][1].startswith("pg_isready")
    assert services["migrate"]["command"] == ["siyu", "db", "upgrade"] and services["migrate"]["build"] == "."
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name, role in (("webhook", "webhook"), ("worker", "worker")):
        service = services[name]
        assert service["environment"]["SIYU_ROLE"] == role
        assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
        assert service["environment"]["SIYU_DATABASE_URL"].startswith("postgresql://siyu:${POSTGRES_PASSWORD}@postgres:")
        assert service["env_file"] == "siyu.env" and service["restart"] == "unless-stopped"
        mounted = service["volumes"][0].split(":")
        assert (ROOT / mounted[0]).resolve() == DEPLOY / "siyu.toml" and mounted[1] == "/etc/siyu/siyu.toml"
    assert services["webhook"]["ports"] == ["127.0.0.1:8081:8080"]  # nginx in front, never the open internet
    assert "${POSTGRES_PASSWORD:?" in services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    # Every variable the configuration reads is set by compose, the image or siyu.env.
    provided = set(Dockerfile().env()) | set(env_file(DEPLOY / "siyu.env.example")) | set(services["webhook"]["environment"])
    wanted = {word.split('"')[0] for word in (DEPLOY / "siyu.toml").read_text().split('"env:')[1:]}
    assert wanted <= provided, wanted - provided
