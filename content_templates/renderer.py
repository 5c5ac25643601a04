"""The one place operator templates are rendered: a sandboxed Jinja2 environment.

Sandboxed, because operators write these templates and a template must not reach into
Python objects; StrictUndefined, because a misspelt variable must fail loudly in
`siyu check` rather than greet a member with an empty name.

Arithmetic in a template is bounded too: `**` and `*` refuse results that would take
seconds or gigabytes (`{{ 10 ** 10 ** 9 }}`, `{{ "x" * 10 ** 9 }}`), and an error a
template raises while rendering (ZeroDivisionError, OverflowError…) becomes a
RenderError that names the template, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    DictLoader,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    UndefinedError,
)
from jinja2.exceptions import SecurityError
from jinja2.runtime import new_context
from jinja2.sandbox import SandboxedEnvironment

SHIPPED = Path(__file__).with_name("templates")


class RenderError(ValueError):
    """A template that cannot be rendered, with a message an operator can act on."""


MAX_POWER_BITS = 4096  # an integer result of `**` at most this large (about 1,233 digits)
MAX_REPEAT = 100_000  # items or characters a `*` repetition may produce


class _BoundedEnvironment(SandboxedEnvironment):
    intercepted_binops = frozenset({"**", "*"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
            if right * abs(left).bit_length() > MAX_POWER_BITS:
                raise SecurityError(f"{left} ** {right} is too large to compute")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and _is_int(times) and len(sequence) * times > MAX_REPEAT:
                    raise SecurityError(f"repeating {len(sequence)} items {times} times makes too many")
        return super().call_binop(context, operator, left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


Render = Callable[[Mapping[str, Any]], str]
# What a template may raise while it is found or rendered: the template's own arithmetic
# and filters fail with the builtin errors ({{ 1 / 0 }}, {{ 1e308 * 10 ** 9 }}).
_RENDER_ERRORS = (TemplateError, ArithmeticError, ValueError, TypeError, LookupError, RecursionError)


def _render_error(name: str, error: BaseException) -> RenderError:
    """The RenderError an operator reads for `error`, naming the template."""
    if isinstance(error, TemplateNotFound):
        return RenderError(f"template {name!r} not found")
    if isinstance(error, UndefinedError):
        return RenderError(f"template {name!r}: {error.message}")
    if isinstance(error, TemplateError):
        where = f" line {error.lineno}" if getattr(error, "lineno", None) else ""
        return RenderError(f"template {name!r}{where}: {error.message}")
    return RenderError(f"template {name!r}: {type(error).__name__}: {error}")


class Renderer:
    def __init__(self, extra_dirs: Sequence[Path] = (), texts: Mapping[str, str] | None = None):
        # Texts written in the console first, then operator directories, so a brand can
        # override any shipped template.
        self._texts = dict(texts or {})
        loaders: list[BaseLoader] = [DictLoader(self._texts)]
        loaders += [FileSystemLoader(str(d)) for d in extra_dirs] + [FileSystemLoader(str(SHIPPED))]
        self._env = _BoundedEnvironment(
            loader=ChoiceLoader(loaders),
            undefined=StrictUndefined,
            autoescape=False,  # plain-text chat messages, not HTML
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
        )

    def render(self, name: str, variables: Mapping[str, Any]) -> str:
        try:
            return self._env.get_template(name).render(variables).strip()
        except _RENDER_ERRORS as error:
            raise _render_error(name, error) from error

    def bind(self, name: str) -> Render:
        """Template `name` looked up once, rendered as `render` would (the same text, the
        same errors), for a job that renders it thousands of times (the care scan).
        `get_template` stats the file on every call and `Template.render` copies the
        environment's globals (a ChainMap, iterated in Python) into each context: two
        thirds of a short template's time. Here the globals are copied once, into a dict
        each context is given in place of the ChainMap; edits to the file after this call
        are not seen."""
        try:
            template = self._env.get_template(name)
        except _RENDER_ERRORS as error:
            raise _render_error(name, error) from error
        context_globals = dict(template.globals)
        env, blocks, concat, handle = self._env, template.blocks, self._env.concat, self._env.handle_exception

        def render(variables: Mapping[str, Any]) -> str:
            try:
                try:  # what Template.render does, with the globals given in one dict
                    context = new_context(env, name, blocks, {**context_globals, **variables}, True, context_globals)
                    return concat(template.root_render_func(context)).strip()  # type: ignore[attr-defined]
                except Exception:
                    handle()  # re-raises with the template's own line in the traceback
                    raise
            except _RENDER_ERRORS as error:
                raise _render_error(name, error) from error

        return render

    def bound(self) -> Callable[[str, Mapping[str, Any]], str]:
        """A `render` for one job: each template it names is bound on first use."""
        templates: dict[str, Render] = {}

        def render(name: str, variables: Mapping[str, Any]) -> str:
            template = templates.get(name)
            if template is None:
                template = templates[name] = self.bind(name)
            return template(variables)

        return render

    def has_text(self, name: str) -> bool:
        """Whether a text of that name was given (the console or [templates.texts]); no file
        is looked at, so it may be asked on the event loop."""
        return name in self._texts

    def source(self, name: str) -> str | None:
        """The text of template `name` as the renderer finds it (None: there is none)."""
        try:
            return self._env.loader.get_source(self._env, name)[0]  # type: ignore[union-attr]
        except TemplateNotFound:
            return None

    def render_text(self, text: str, variables: Mapping[str, Any]) -> str:
        """A template given as text (a draft in an editor), in the same sandbox."""
        try:
            return self._env.from_string(text).render(variables).strip()
        except UndefinedError as error:
            raise RenderError(error.message or "undefined variable") from error
        except TemplateError as error:
            where = f"line {error.lineno}: " if getattr(error, "lineno", None) else ""
            raise RenderError(f"{where}{error.message}") from error

    def problems(self, name: str, sample: Mapping[str, Any]) -> list[str]:
        """What is wrong with template `name` when rendered with `sample` (empty if fine)."""
        try:
            self.render(name, sample)
        except RenderError as error:
            return [str(error)]
        return []
