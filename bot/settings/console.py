"""Settings of the operator console at /admin/: who may log in, and how long for."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# The stored form of a console password: `scrypt$N$r$p$salt$hash`, salt and hash in
# URL-safe base64 (made by bot/console/passwords.py).
PASSWORD_HASH = re.compile(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+={0,2})\$([A-Za-z0-9_-]+={0,2})")


def is_password_hash(value: str) -> bool:
    return PASSWORD_HASH.fullmatch(value) is not None


def _at_least(length: int):  # noqa: ANN202 - a validator
    def check(secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < length:
            raise ValueError(f"must be {length} characters or more")
        return secret

    return check


class ConsoleUser(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    login: str = Field(min_length=1, max_length=64)
    # operator: everything. staff: the tasks and members of the staff member `staff` (a
    # store manager's: the store's).
    role: Literal["operator", "staff"] = "operator"
    staff: str | None = None  # the staff userid a staff login acts as
    # `siyu console hash-password` prints one; the plain password is never stored.
    password_hash: str | None = None
    # Or a long random token typed in the password field ("env:NAME" keeps it out of the file).
    token: Annotated[SecretStr | None, AfterValidator(_at_least(16))] = None
    # An operator who may export members' whole phone numbers (masked otherwise).
    export_phones: bool = False

    @field_validator("password_hash")
    @classmethod
    def _a_hash(cls, value: str | None) -> str | None:
        if value is not None and not is_password_hash(value):
            raise ValueError("is not a hash from `siyu console hash-password` (scrypt$…)")
        return value

    @model_validator(mode="after")
    def _complete(self) -> ConsoleUser:
        if self.password_hash is None and self.token is None:
            raise ValueError(f"user {self.login!r} needs password_hash or token")
        if self.role == "staff" and not self.staff:
            raise ValueError(f"user {self.login!r} has role staff: name the staff userid in `staff`")
        return self


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The console is served when at least one user is configured.
    users: list[ConsoleUser] = []
    # The address staff open task links at (in WeCom text cards and prompts); default:
    # http://server.host:server.port.
    public_url: str | None = None
    # Signs session cookies and task links: 32 or more characters, from the environment.
    # Unset: a new secret each start, so everyone logs in again after a restart.
    secret: Annotated[SecretStr | None, AfterValidator(_at_least(32))] = None
    session_hours: int = Field(default=12, ge=1, le=24 * 30)
    # How long a task link in a staff prompt opens that task without a password.
    task_link_days: int = Field(default=7, ge=1, le=60)
    language: Literal["zh", "en"] = "zh"  # the default; each user may switch

    @field_validator("public_url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"https?://[^/]+", url):
            raise ValueError("must be an http:// or https:// URL")
        return url.rstrip("/") if url else url

    @field_validator("users")
    @classmethod
    def _unique(cls, users: list[ConsoleUser]) -> list[ConsoleUser]:
        seen: set[str] = set()
        for user in users:
            if user.login in seen:
                raise ValueError(f"login {user.login!r} is listed twice")
            seen.add(user.login)
        return users
