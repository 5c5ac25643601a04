"""Configuration: typed settings, env: values, and errors that name the file and key."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from bot.cli.main import main
from bot.settings.model import ConfigError, Settings, load_settings

VALID_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "siyu.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text))
    return caught.value.problems


def test_an_empty_file_gives_working_defaults(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert settings.timezone == "Asia/Shanghai"
    assert settings.server.port == 8080
    assert not settings.platforms.sandbox.enabled and settings.platforms.wecom is None
    # A relative SQLite path lives next to the config file, wherever siyu is started.
    assert settings.storage.url == f"sqlite:///{(tmp_path / 'siyu.db').resolve()}"


def test_every_problem_is_reported_with_file_and_key_path(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        timezone = "Mars/Olympus"
        colour = "blue"
        [server]
        port = 70000
        [platforms.wecom]
        corp_id = "ww1234"
        agent_id = 1000002
        token = "tok"
        encoding_aes_key = "short"
        secret = "s"
        [[tags.rules]]
        id = "r1"
        tag = "面包控"
        keywords = []
        """,
    )
    where = str(tmp_path / "siyu.toml")
    assert f"{where}: platforms.wecom.encoding_aes_key: must be 43 characters" in found
    assert f"{where}: colour: unknown key" in found
    assert any(p.startswith(f"{where}: timezone: unknown time zone 'Mars/Olympus'") for p in found)
    assert any(p.startswith(f"{where}: server.port:") for p in found)
    assert f"{where}: tags.rules[0]: a keyword rule needs at least one keyword" in found
    assert len(found) == 5


def test_an_unknown_key_in_a_section_is_an_error(tmp_path: Path) -> None:
    assert problems(tmp_path, "[platforms.sandbox]\nenable = true\n") == [
        f"{tmp_path / 'siyu.toml'}: platforms.sandbox.enable: unknown key"
    ]


def test_env_values_are_read_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = f"""
    [platforms.wecom]
    corp_id = "ww1234"
    agent_id = 1000002
    token = "QDG6eK"
    encoding_aes_key = "{VALID_AES_KEY}"
    secret = "env:SIYU_TEST_SECRET"
    """
    monkeypatch.delenv("SIYU_TEST_SECRET", raising=False)
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'siyu.toml'}: platforms.wecom.secret: environment variable SIYU_TEST_SECRET is not set"
    ]
    monkeypatch.setenv("SIYU_TEST_SECRET", "s3cret-value")
    wecom = load_settings(write(tmp_path, text)).platforms.wecom
    assert wecom is not None and wecom.secret.get_secret_value() == "s3cret-value"
    assert "s3cret-value" not in repr(wecom)  # secrets never reach a log line via repr


def test_a_file_that_is_not_toml_or_missing_is_a_clear_error(tmp_path: Path) -> None:
    assert problems(tmp_path, "[server\nport = 1")[0].startswith(f"{tmp_path / 'siyu.toml'}: not valid TOML")
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "absent.toml")


def test_a_duplicate_rule_id_is_an_error(tmp_path: Path) -> None:
    rule = '[[tags.rules]]\nid = "r"\ntag = "t"\nkeywords = ["k"]\n'
    assert problems(tmp_path, rule * 2) == [f"{tmp_path / 'siyu.toml'}: tags: rule id 'r' is used twice"]


def test_siyu_check_exits_1_listing_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[platforms.wecom]\ncorp_id = "ww1"\nagent_id = 1\ntoken = "t"\nencoding_aes_key = "x"\nsecret = "s"\n')
    assert main(["check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: platforms.wecom.encoding_aes_key: must be 43 characters" in err
    assert "1 problem(s) found" in err


def test_siyu_check_exits_0_with_a_one_line_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, '[platforms.sandbox]\nenabled = true\n[persona]\nname = "小禾"\n')
    assert main(["check", "--config", str(path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "OK" in out[0] and "小禾" in out[0] and "sandbox" in out[0]


def test_siyu_check_finds_an_unknown_template_variable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    templates = tmp_path / "templates" / "persona"
    templates.mkdir(parents=True)
    (templates / "reply.txt.j2").write_text("{{ member.nickname }}，你好")
    path = write(tmp_path, '[templates]\ndir = "templates"\n')
    assert main(["check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "persona.reply_template" in err and "nickname" in err


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ 2.0 ** 5000 }}", "OverflowError"),
        ("{{ 10 ** 100000 }}", "too large"),  # would compute a 100,000-digit number
        ("{{ '好' * 10 ** 9 }}", "too many"),  # would build a 3 GB string
    ],
)
def test_siyu_check_names_a_template_that_fails_when_rendered(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, problem: str
) -> None:
    # Issue 14 item 15: these raised out of the renderer: a traceback here, a 500 or a
    # failed row elsewhere.
    templates = tmp_path / "templates" / "persona"
    templates.mkdir(parents=True)
    (templates / "reply.txt.j2").write_text(body + "，你好")
    path = write(tmp_path, '[templates]\ndir = "templates"\n')
    assert main(["check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert "persona.reply_template" in err and problem in err and "Traceback" not in err


def test_siyu_config_env_variable_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "")
    monkeypatch.setenv("SIYU_CONFIG", str(path))
    assert main(["check"]) == 0
    assert str(path) in capsys.readouterr().out


def test_siyu_check_finds_a_bad_cron_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, f"""
[platforms.wecom]
corp_id = "ww1234"
agent_id = 1000002
token = "QDG6eK"
encoding_aes_key = "{VALID_AES_KEY}"
secret = "s"
reconcile_cron = "61 3 * * *"
""")
    assert main(["check", "--config", str(path)]) == 1
    assert f"{path}: platforms.wecom.reconcile_cron: not a valid cron line" in capsys.readouterr().err


def test_channels_and_the_official_account_are_configured_by_key(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, f"""
[platforms.wecom]
corp_id = "ww1234"
agent_id = 1000002
token = "QDG6eK"
encoding_aes_key = "{VALID_AES_KEY}"
secret = "s"
[platforms.wecom.channels.store-jingan-poster]
tags = ["门店海报"]
store = "jingan"
[platforms.oa]
app_id = "wx2c2769f8efd9abc2"
token = "spamtest"
secret = "s"
encoding_aes_key = "{VALID_AES_KEY}"
"""))
    assert settings.platforms.wecom is not None and settings.platforms.oa is not None
    assert settings.platforms.wecom.channels["store-jingan-poster"].tags == ["门店海报"]
    assert problems(tmp_path, '[platforms.oa]\napp_id = "wx1"\ntoken = "spamtest"\nsecret = "s"\nencoding_aes_key = "short"\n') == [
        f"{tmp_path / 'siyu.toml'}: platforms.oa.encoding_aes_key: must be 43 characters"
    ]


def test_siyu_check_names_the_faq_entry_whose_template_is_missing_or_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faq = tmp_path / "templates" / "faq"
    faq.mkdir(parents=True)
    (faq / "hours.txt.j2").write_text("{{ persona.nmae }}：8 点开门")
    path = write(tmp_path, """
[templates]
dir = "templates"
[[replies.faq]]
id = "hours"
keywords = ["几点开门"]
template = "faq/hours.txt.j2"
[[replies.faq]]
id = "parking"
keywords = ["停车"]
template = "faq/parking.txt.j2"
""")
    assert main(["check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}: replies.faq[0].template:" in err and "nmae" in err
    assert f"{path}: replies.faq[1].template:" in err and "parking.txt.j2" in err


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ('kind = "regex"\npattern = "预算(\\\\d+"', "tags.rules[0]: pattern is not a valid regular expression"),
        ('kind = "regex"\nkeywords = ["x"]\npattern = "x"', "tags.rules[0]: a regex rule does not take keywords"),
        # Lookaround has no linear-time bound: refused, so no member message can stall the loop.
        ('kind = "regex"\npattern = "蛋糕(?=券)"', "tags.rules[0]: pattern is not a valid regular expression: cannot be"),
        ('kind = "event"', "tags.rules[0]: an event rule needs event"),
        ('kind = "event"\nevent = "birthday"', "tags.rules[0].event:"),
        ('kind = "behaviour"\nmeasure = "messages"', "tags.rules[0]: a behaviour rule needs measure"),
        ('kind = "sometimes"', "tags.rules[0].kind:"),
    ],
)
def test_a_rule_that_does_not_fit_its_kind_is_an_error(tmp_path: Path, rule: str, message: str) -> None:
    found = problems(tmp_path, f'[[tags.rules]]\nid = "r"\ntag = "t"\n{rule}\n')
    assert any(p.startswith(f"{tmp_path / 'siyu.toml'}: {message}") for p in found), found


def test_a_rules_file_adds_rules_and_its_problems_name_it(tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text(
        '[[groups]]\nname = "意向等级"\nexclusive = true\n'
        '[[rules]]\nid = "grade-s"\ntag = "S"\ngroup = "意向等级"\nkeywords = ["今天就要"]\n'
    )
    path = write(tmp_path, '[tags]\nrules_file = "rules.toml"\n[[tags.rules]]\nid = "bread"\ntag = "面包控"\nkeywords = ["面包"]\n')
    tags = load_settings(path).tags
    assert [r.id for r in tags.rules] == ["bread", "grade-s"] and tags.groups[0].exclusive
    (tmp_path / "rules.toml").write_text('[[rules]]\nid = "bread"\ntag = "x"\nkeywords = ["y"]\n[[rules]]\nid = "z"\n')
    found = problems(tmp_path, path.read_text())
    assert f"{tmp_path / 'rules.toml'}: rules[1].tag: required" in found
    (tmp_path / "rules.toml").write_text('[[rules]]\nid = "bread"\ntag = "x"\nkeywords = ["y"]\n')
    assert problems(tmp_path, path.read_text()) == [f"{tmp_path / 'rules.toml'}: rule id 'bread' is used twice (here and in the main file)"]


def _keys(model: type[BaseModel]) -> set[str]:
    """Every key name of a settings model and of the sections under it."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        names.add(field.alias or name)
        for kind in typing.get_args(field.annotation) or (field.annotation,):
            inner = typing.get_args(kind)[0] if typing.get_origin(kind) is list else kind
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                names |= _keys(inner)
    return names


def test_the_example_config_is_valid_and_documents_every_key() -> None:
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    load_settings(example)
    text = example.read_text(encoding="utf-8")
    undocumented = sorted(
        name for name in _keys(Settings)
        if not re.search(rf"^[# ]*({name} *=|{name} +(REQUIRED|\w)|\[+[\w.]*\b{name}\b)", text, re.M)
    )
    assert undocumented == []


def test_console_users_are_checked(tmp_path: Path) -> None:
    found = problems(tmp_path, """
        [console]
        secret = "too-short"
        [[console.users]]
        login = "ops"
        password_hash = "plain-text-password"
        [[console.users]]
        login = "clerk"
        role = "staff"
        token = "a-token-long-enough-000"
        [[console.users]]
        login = "nobody"
    """)
    text = "\n".join(found)
    assert "console.secret: must be 32 characters or more" in text
    assert "console.users[0].password_hash: is not a hash from `siyu console hash-password`" in text
    assert "user 'clerk' has role staff: name the staff userid in `staff`" in text
    assert "user 'nobody' needs password_hash or token" in text


def test_a_scheduler_lease_shorter_than_two_checks_or_a_stall_limit_out_of_range_is_refused(tmp_path: Path) -> None:
    found = problems(tmp_path, "[scheduler]\ncheck_seconds = 10\nlease_seconds = 15\n")
    assert any("lease_seconds must be at least twice check_seconds" in problem for problem in found)
    assert problems(tmp_path, "[scheduler]\ncheck_seconds = 0\n")
    assert problems(tmp_path, "[server]\nloop_stall_seconds = 1\n")
    settings = load_settings(write(tmp_path, ""))
    assert (settings.scheduler.check_seconds, settings.scheduler.lease_seconds) == (5.0, 20.0)
    assert settings.server.loop_stall_seconds == 120.0
