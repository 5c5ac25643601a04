"""Settings: the TOML file, read into typed, validated values.

A value written `"env:NAME"` is read from the environment variable NAME, so secrets stay
out of the file. Unknown keys are errors: a misspelt key silently ignored is a setting
the operator believes in and does not have.
"""

from __future__ import annotations

import os
import re
import tomllib
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy.engine import make_url

from bot.settings.calendar import CalendarSettings
from bot.settings.care import CareSettings, SixMomentsSettings
from bot.settings.console import ConsoleSettings
from bot.settings.imports import ImportSettings
from bot.settings.layers import LayersSettings
from bot.settings.outcomes import OutcomesSettings
from bot.settings.rules import HandOffSettings, ReplySettings, TagRulesFile, TagSettings
from bot.settings.wecom import GroupWelcomes, SidebarSettings

DEFAULT_PATH = Path("siyu.toml")


class ConfigError(Exception):
    """Every problem found in a configuration file, each as `file: key.path: message`."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


def _aes_key(key: SecretStr) -> SecretStr:
    value = key.get_secret_value()
    if len(value) != 43:
        raise ValueError("must be 43 characters")
    if not re.fullmatch(r"[A-Za-z0-9]{43}", value):
        raise ValueError("must be letters and digits only")
    return key


def _http_url(url: str) -> str:
    if not re.match(r"https?://[^/]+", url):
        raise ValueError("must be an http:// or https:// URL")
    return url.rstrip("/")


def _url_path(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError("must start with /")
    return path


def _token(length: tuple[int, int]):  # noqa: ANN202 - a validator
    low, high = length

    def check(token: SecretStr) -> SecretStr:
        if not re.fullmatch(rf"[A-Za-z0-9]{{{low},{high}}}", token.get_secret_value()):
            raise ValueError(f"must be {low} to {high} letters or digits")
        return token

    return check


AesKey = Annotated[SecretStr, AfterValidator(_aes_key)]
HttpBase = Annotated[str, AfterValidator(_http_url)]
UrlPath = Annotated[str, AfterValidator(_url_path)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(_Section):
    url: str = "sqlite:///siyu.db"
    # PostgreSQL only: connections of the process's main pool (dispatcher, delivery,
    # console, API), and how many more it may open at a peak. SQLite uses one.
    pool_size: int = Field(default=8, ge=1, le=100)
    max_overflow: int = Field(default=2, ge=0, le=100)
    # SQLite only: connections the console's pages read through, side by side, so that a
    # page counting every member for seconds holds up no other page.
    console_connections: int = Field(default=4, ge=1, le=16)
    # How long a process's claim on a member's inbox rows lasts unless renewed (every
    # third of it while the process lives): after a crash, another process takes the
    # rows over this long after the last renewal.
    inbox_lease_seconds: float = Field(default=30.0, ge=1, le=600)

    @field_validator("url")
    @classmethod
    def _supported(cls, url: str) -> str:
        try:
            backend = make_url(url).get_backend_name()
        except Exception as error:
            raise ValueError(f"not a database URL: {error}") from None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return url


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    shutdown_timeout: float = Field(default=10.0, gt=0)
    # A client that has not sent a whole request's headers this long after connecting (or
    # after its last answer, on a kept-alive connection) is disconnected; one whose body
    # is still arriving this long after its headers gets 408 (bot/web/limits.py).
    header_timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    body_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    access_log: bool = False
    # all: receive and work in one process. webhook: only verify, store and acknowledge
    # callbacks. worker: only handle, deliver and run scheduled jobs.
    role: Literal["all", "webhook", "worker"] = "all"
    # Bearer token for the JSON API under /api/ (Authorization: Bearer <token>). Without
    # one the API is not served. Keep it in the environment: "env:SIYU_API_TOKEN".
    api_token: SecretStr | None = Field(default=None, min_length=16)
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed: behind
    # them, logs name the client's address instead of the proxy's.
    trusted_proxies: list[str] = []
    # /healthz answers 503 when a loop (dispatcher, delivery, scheduler) has not completed
    # a pass for this many seconds.
    loop_stall_seconds: float = Field(default=120.0, ge=5, le=3600)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            try:
                ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(f"{proxy!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)") from None
        return proxies


class ChannelSettings(_Section):
    """A contact-way code (活码, the `state` of 「联系我」): what a contact from it implies."""

    tags: list[str] = []
    store: str | None = None  # a store code
    owner: str | None = None  # a staff userid; default: the staff member who added her
    # Customer groups (chat ids, up to 5) a QR code of this channel brings people into
    # (a WeCom join way, 加入群聊): joining gives them the channel's tags and store.
    group_chats: list[str] = Field(default=[], max_length=5)
    # When every listed group is full, WeCom opens a new one named this plus a number.
    group_room_name: str | None = Field(default=None, min_length=1, max_length=40)


class WeComSettings(_Section):
    corp_id: str = Field(min_length=1)
    agent_id: int
    token: Annotated[SecretStr, AfterValidator(_token((1, 32)))]
    encoding_aes_key: AesKey
    secret: SecretStr
    api_base: HttpBase = "https://qyapi.weixin.qq.com"
    callback_path: UrlPath = "/wecom/callback"
    # WeCom documents no freshness window and a retry may carry the old timestamp, so a
    # replay window is off (0) unless set, in seconds.
    replay_window_seconds: int = Field(default=0, ge=0)
    channels: dict[str, ChannelSettings] = {}
    reconcile_cron: str = "40 3 * * *"  # re-read every staff member's customer list
    # Transient API errors (-1, 45009, 45033, timeouts, 5xx) are retried with exponential
    # backoff and jitter, at most this long between two tries, then left to delivery.
    retry_max_seconds: float = Field(default=10.0, gt=0, le=300)
    # When set, tags our rules give are marked on the customer in WeCom (a corp tag missing
    # there is created in this tag group), and staff edits of corp tags come back to us.
    tag_sync_group: str | None = Field(default=None, min_length=1, max_length=30)
    # The member card in the chat toolbar (聊天工具栏).
    sidebar: SidebarSettings = SidebarSettings()
    # Customer-group welcome templates kept in WeCom (the console edits them too).
    group_welcomes: GroupWelcomes = []
    # Moments posts from the calendar: who published and who reacted is read back this
    # often, for this many days after a post.
    moments_read_cron: str = "*/30 * * * *"
    moments_read_days: int = Field(default=7, ge=1, le=30)
    # Mass sends from the calendar (staff confirm them in the client): who they reached is
    # read back this often, for this many days after a send; each customer reached is a touch.
    mass_results_cron: str = "15 * * * *"
    mass_results_days: int = Field(default=7, ge=1, le=30)

    @field_validator("channels")
    @classmethod
    def _join_way_states(cls, channels: dict[str, ChannelSettings]) -> dict[str, ChannelSettings]:
        # A join way carries the channel code as its `state`, which WeCom caps at 30 characters.
        if long := sorted(code for code, c in channels.items() if c.group_chats and len(code) > 30):
            raise ValueError(f"channel codes with group_chats have at most 30 characters: {', '.join(long)}")
        return channels


class OfficialAccountSettings(_Section):
    app_id: str = Field(min_length=1)
    token: Annotated[SecretStr, AfterValidator(_token((3, 32)))]
    secret: SecretStr
    # Needed in safe (安全) and compatible (兼容) mode; the previous key keeps callbacks
    # working while a key change reaches every server.
    encoding_aes_key: AesKey | None = None
    previous_encoding_aes_key: AesKey | None = None
    # With an encoding_aes_key, a callback without encrypt_type=aes is refused: the plain
    # signature does not cover the body, so anyone holding one seen request could post any
    # message. Only while switching the account from plaintext mode, set this to true.
    accept_plaintext: bool = False
    # A callback whose timestamp is further than this from our clock, or whose signature,
    # timestamp and nonce were seen before within it, is refused (a replay).
    replay_window_seconds: int = Field(default=300, ge=30, le=86400)
    api_base: HttpBase = "https://api.weixin.qq.com"
    callback_path: UrlPath = "/oa/callback"
    retry_max_seconds: float = Field(default=10.0, gt=0, le=300)


class SandboxSettings(_Section):
    enabled: bool = False


class PlatformsSettings(_Section):
    wecom: WeComSettings | None = None
    oa: OfficialAccountSettings | None = None
    sandbox: SandboxSettings = SandboxSettings()


class PersonaSettings(_Section):
    name: str = Field(default="小禾", min_length=1)
    title: str = ""
    signature: str = ""
    default_line: str = "有什么想聊的，随时找我。"
    tips: dict[str, str] = {}
    reply_template: str = "persona/reply.txt.j2"


class OptOutSettings(_Section):
    """Words a member writes, alone in a message, to stop marketing or to have it back.
    Matching ignores case and full-/half-width."""

    stop_words: list[str] = Field(default=["退订", "TD", "unsubscribe"], min_length=1)
    resume_words: list[str] = ["订阅", "subscribe"]


class DeliverySettings(_Section):
    """Humane delivery, checked for every outbox row at send time."""

    # Marketing and care written in these hours wait for the morning ("HH:MM" local; an
    # end before the start runs past midnight). quiet_hours = false turns them off.
    quiet_hours: bool = True
    quiet_start: str = "21:30"
    quiet_end: str = "08:30"
    # Marketing (calendar content) a member receives at most per 7 days, by her layer in
    # cap_scheme; care, service replies and staff prompts are exempt.
    cap_scheme: str = "value"
    weekly_caps: dict[str, int] = {"super": 4}
    default_weekly_cap: int | None = Field(default=2, ge=0)
    # Sends in flight at once per route (message, mass_send, profile…), so a slow or
    # failing route fills only its own lane; welcomes have their own, larger lane.
    route_concurrency: int = Field(default=8, ge=1, le=64)
    welcome_concurrency: int = Field(default=32, ge=1, le=256)
    # How long a process's claim on a row it is sending lasts unrenewed (renewed every
    # third of it while the process lives). After a crash, another process takes the
    # rows over this long after the last renewal.
    claim_seconds: int = Field(default=60, ge=2, le=3600)

    @field_validator("quiet_start", "quiet_end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r} is not a time like 21:30")
        return value


class SchedulerSettings(_Section):
    # A scheduled run that fell while the server was stopped runs once on start when it
    # is at most this many minutes late; an older one is skipped until its next time.
    catch_up_minutes: int = Field(default=360, ge=0, le=10080)
    # One process per database runs the jobs; the others check this often whether the
    # leader is gone (PostgreSQL: its advisory lock freed) and the first to see it takes over.
    check_seconds: float = Field(default=5.0, ge=0.1, le=30)
    # SQLite only: the leader's lease, renewed at every check; a standby takes over once
    # it has run out, so at most lease_seconds + check_seconds after the leader died.
    lease_seconds: float = Field(default=20.0, ge=1, le=300)

    @model_validator(mode="after")
    def _lease_outlives_checks(self) -> SchedulerSettings:
        if self.lease_seconds < 2 * self.check_seconds:
            raise ValueError("lease_seconds must be at least twice check_seconds (the leader renews at each check)")
        return self


class TasksSettings(_Section):
    # Each morning: every staff member's open tasks in one prompt, grouped by due day.
    digest_cron: str = "0 8 * * *"
    digest_days_ahead: int = Field(default=3, ge=0, le=30)  # tasks due this soon are included
    # A task this many days overdue is also brought to the store manager, once.
    escalate_after_days: int = Field(default=2, ge=1, le=60)


class TemplateSettings(_Section):
    dir: str | None = None  # operator templates, searched before the shipped ones
    # Message texts by template name ("calendar/new_season.txt.j2" = "…"), searched before
    # `dir` and the shipped templates: what the console's editors write, and what
    # `siyu config export` writes back.
    texts: dict[str, str] = {}


LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class LogSettings(_Section):
    level: LogLevel = "INFO"
    # "text": one readable line per event; "json": one JSON object per line, for a
    # log collector. Both carry the time in the configured zone with its offset.
    format: Literal["text", "json"] = "text"
    # APScheduler's and aiohttp's own chatter (a line per job run, per request).
    library_level: LogLevel = "WARNING"
    # SQL parameters (message texts, remarks, phone numbers) in SQLAlchemy's DEBUG lines
    # and in database error messages. Off: only the statements are shown.
    sql_parameters: bool = False


class MetricsSettings(_Section):
    # GET /metrics in Prometheus's text format. Off unless enabled.
    enabled: bool = False
    # Where: without a port, on the main server (keep /metrics internal at the proxy);
    # with one, on host:port of its own, and not on the main server.
    host: str = "127.0.0.1"
    port: int | None = Field(default=None, ge=1, le=65535)


class Settings(_Section):
    timezone: str = "Asia/Shanghai"
    storage: StorageSettings = StorageSettings()
    server: ServerSettings = ServerSettings()
    platforms: PlatformsSettings = PlatformsSettings()
    persona: PersonaSettings = PersonaSettings()
    tags: TagSettings = TagSettings()
    replies: ReplySettings = ReplySettings()
    handoff: HandOffSettings = HandOffSettings()
    layers: LayersSettings = LayersSettings()
    care: CareSettings = CareSettings()
    six_moments: SixMomentsSettings = SixMomentsSettings()
    delivery: DeliverySettings = DeliverySettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    tasks: TasksSettings = TasksSettings()
    calendar: CalendarSettings = CalendarSettings()
    opt_out: OptOutSettings = OptOutSettings()
    imports: ImportSettings = Field(default=ImportSettings(), alias="import")  # [import]: a keyword in Python
    templates: TemplateSettings = TemplateSettings()
    console: ConsoleSettings = ConsoleSettings()
    log: LogSettings = LogSettings()
    metrics: MetricsSettings = MetricsSettings()
    outcomes: OutcomesSettings = OutcomesSettings()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (use an IANA name such as Asia/Shanghai)") from None
        return name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def configured_tags(settings: Settings) -> frozenset[str]:
    """Tags the configuration gives (tag rules, WeCom channels, layers.known_tags): an
    audience may name them before any member has them."""
    tags = {rule.tag for rule in settings.tags.rules} | set(settings.layers.known_tags)
    if settings.platforms.wecom is not None:
        tags |= {tag for channel in settings.platforms.wecom.channels.values() for tag in channel.tags}
    return frozenset(tags)


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """The file to read: the --config flag, else $SIYU_CONFIG, else ./siyu.toml."""
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("SIYU_CONFIG") or DEFAULT_PATH)


def load_settings(path: Path) -> Settings:
    """Read and validate `path`; raise ConfigError listing every problem found."""
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            [f"{where}: no such file (copy config.example.toml, or run `siyu demo` to create one)"]
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError([f"{where}: not valid TOML: {error}"]) from None
    unset: list[tuple[str | int, ...]] = []
    resolved = _resolve_env(raw, (), unset)
    problems = [
        f"{where}: {_dotted(key)}: environment variable {_env_name(raw, key)} is not set"
        for key in unset
    ]
    try:
        settings = Settings.model_validate(resolved)
    except ValidationError as error:
        # A key whose variable is unset was reported above; its type error would be noise.
        problems.extend(
            f"{where}: {describe(e)}" for e in error.errors() if tuple(e["loc"]) not in unset
        )
    if problems:
        raise ConfigError(problems)
    settings = _anchor_paths(settings, path.parent)
    if settings.tags.rules_file:
        settings = _with_rules_file(settings, Path(settings.tags.rules_file))
    return settings


def _with_rules_file(settings: Settings, path: Path) -> Settings:
    """Add the rules and groups of the file `tags.rules_file` names; its problems name it."""
    where = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{where}: no such file (named by tags.rules_file)"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError([f"{where}: not valid TOML: {error}"]) from None
    try:
        extra = TagRulesFile.model_validate(raw)
    except ValidationError as error:
        raise ConfigError([f"{where}: {describe(e)}" for e in error.errors()]) from None
    try:
        tags = settings.tags.merged(extra)
    except ValidationError as error:  # only a name used in both files is left to find
        raise ConfigError([f"{where}: {describe(e).removeprefix('(top level): ')} (here and in the main file)"
                           for e in error.errors()]) from None
    return settings.model_copy(update={"tags": tags})


def _resolve_env(value: Any, key: tuple[str | int, ...], unset: list[tuple[str | int, ...]]) -> Any:
    """Replace every "env:NAME" with $NAME; note the keys whose variable is unset."""
    if isinstance(value, dict):
        return {k: _resolve_env(v, (*key, k), unset) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, (*key, i), unset) for i, v in enumerate(value)]
    if isinstance(value, str) and value.startswith("env:"):
        if value[4:] not in os.environ:
            unset.append(key)
            return None
        return os.environ[value[4:]]
    return value


def _env_name(raw: Any, key: tuple[str | int, ...]) -> str:
    for part in key:
        raw = raw[part]
    return str(raw)[4:]


def _dotted(key: tuple[str | int, ...]) -> str:
    text = ""
    for part in key:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def describe(error: Any) -> str:
    path = _dotted(tuple(error["loc"]))
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{path}: unknown key"
    if kind == "missing":
        return f"{path}: required"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path}: {message}"


def _anchor_paths(settings: Settings, base: Path) -> Settings:
    """Relative file paths in the config mean: next to the config file."""
    storage = settings.storage
    url = make_url(storage.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        database = Path(url.database)
        if not database.is_absolute():
            anchored = url.set(database=str((base / database).resolve()))
            storage = StorageSettings(url=anchored.render_as_string(hide_password=False))
    templates = settings.templates
    if templates.dir and not Path(templates.dir).is_absolute():
        templates = TemplateSettings(dir=str((base / templates.dir).resolve()))
    tags = settings.tags
    if tags.rules_file and not Path(tags.rules_file).is_absolute():
        tags = tags.model_copy(update={"rules_file": str((base / tags.rules_file).resolve())})
    calendar = settings.calendar
    if not Path(calendar.media_dir).is_absolute():
        calendar = calendar.model_copy(update={"media_dir": str((base / calendar.media_dir).resolve())})
    return settings.model_copy(update={"storage": storage, "templates": templates, "tags": tags, "calendar": calendar})
