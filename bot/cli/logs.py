"""Where a process's log lines go and what they look like ([log] in the configuration).

One line per event on standard error, as text or as JSON; every time in the configured
zone with its offset; the request id (storage/tracing.py) on every line written while an
update or a send is in hand; libraries' chatter at `[log] library_level`; a client that
went away is one INFO line, not an ERROR with a traceback. Light at import: `siyu
--help` must not pay for it.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from bot.settings.model import Settings

TEXT = "%(asctime)s %(levelname)s %(name)s%(request)s: %(message)s"
JSON_FIELDS = ("asctime", "levelname", "name", "message", "request_id")
JSON_NAMES = {"asctime": "time", "levelname": "level", "name": "logger"}
# Loggers of libraries that write a line per job run or per request.
CHATTY = ("apscheduler",)
# Database drivers' loggers.
DRIVERS = ("aiosqlite", "psycopg")


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (tests swap it)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


class RequestIds(logging.Filter):
    """Puts the request id in hand on the record (None when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from storage.tracing import REQUEST_ID

        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        record.request = f" [{record.request_id}]" if record.request_id else ""
        return True


class _ClientGone(logging.Filter):
    """aiohttp logs a client that closed its connection mid-answer as an ERROR with a
    traceback; it is news, not a fault: one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ConnectionResetError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args = "client went away (%s)", (error,)
            record.exc_info = record.exc_text = None
        return True


class RedactQueries(logging.Filter):
    """Access-log lines name the request, and a query can carry secrets: task-link
    signatures, the official account's signature triple, OAuth codes, a searched phone
    number. Each query value is replaced by `…` except those of a few harmless keys."""

    SHOWN = frozenset({"page", "before", "lang", "status", "layer", "month", "view", "kind", "encrypt_type"})
    _QUERY = re.compile(r"\?([^\s\"]*)")

    @classmethod
    def redact(cls, text: str) -> str:
        return cls._QUERY.sub(lambda m: "?" + "&".join(cls._pair(p) for p in m.group(1).split("&")), text)

    @classmethod
    def _pair(cls, pair: str) -> str:
        name, equals, _value = pair.partition("=")
        return pair if not equals or name in cls.SHOWN else f"{name}=…"

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self.redact(record.msg)
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(self.redact(a) if isinstance(a, str) else a for a in args)
        for key, value in list(vars(record).items()):  # the access logger's extra fields
            if key.startswith(("first_request_line", "request_header")):
                if isinstance(value, str):
                    setattr(record, key, self.redact(value))
                elif isinstance(value, dict):
                    setattr(record, key, {k: self.redact(v) if isinstance(v, str) else v for k, v in value.items()})
        return True


def _zoned(formatter: type[logging.Formatter], zone: ZoneInfo) -> type[logging.Formatter]:
    class Zoned(formatter):  # type: ignore[misc, valid-type]
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
            return datetime.fromtimestamp(record.created, zone).isoformat(timespec="milliseconds")

    return Zoned


def formatter_for(kind: str, zone: ZoneInfo) -> logging.Formatter:
    if kind == "json":
        from pythonjsonlogger.json import JsonFormatter

        json_formatter: Any = _zoned(JsonFormatter, zone)
        return json_formatter(list(JSON_FIELDS), rename_fields=JSON_NAMES, json_ensure_ascii=False)
    return _zoned(logging.Formatter, zone)(TEXT)


def configure_logging(settings: Settings, stream: IO[str] | None = None) -> logging.Handler:
    """Set up the root logger for `settings` (replacing what an earlier call set up);
    returns the handler. `stream`: where to write instead of standard error."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "siyu", False)]:
        root.removeHandler(old)
    handler: logging.Handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    handler.siyu = True  # type: ignore[attr-defined]
    handler.setFormatter(formatter_for(settings.log.format, settings.zone))
    handler.addFilter(RequestIds())
    root.addHandler(handler)
    root.setLevel(settings.log.level)
    level = logging.getLevelName(settings.log.level)
    for name in CHATTY:
        logging.getLogger(name).setLevel(settings.log.library_level)
    # The access log is on only when [server] access_log asks for it; then at INFO.
    access = logging.getLogger("aiohttp.access")
    access.setLevel("INFO" if settings.server.access_log else settings.log.library_level)
    if not any(isinstance(f, RedactQueries) for f in access.filters):
        access.addFilter(RedactQueries())
    from storage.engine import reveal_sql_parameters

    reveal_sql_parameters(settings.log.sql_parameters)
    for name in DRIVERS:  # their DEBUG lines repeat each statement with its parameters
        logging.getLogger(name).setLevel(logging.NOTSET if settings.log.sql_parameters else logging.INFO)
    logging.getLogger("alembic").setLevel(max(logging.WARNING, level))
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _ClientGone) for f in server.filters):
        server.addFilter(_ClientGone())
    return handler
