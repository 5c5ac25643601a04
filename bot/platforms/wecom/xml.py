"""Safe, fast parsing of the flat XML that WeCom and the official account send.

DTDs and entity declarations are refused outright — a callback has no use for them, and
they are how XML bombs and external-entity reads get in — and an undeclared entity is a
parse error. The stdlib's expat is driven directly: these messages are one level deep,
and building an ElementTree (which also re-imports expat for every parser) would cost
more than the crypto.

Every callback is read twice (its envelope, then the message inside), so the one shape
the platforms send — `<xml>`, then children holding CDATA or plain characters, no
attributes, no entities, no declaration — is read by a regular expression instead, which
costs a fifth of expat's start-up and callbacks. Only a document that is that shape from
its first character to its last is read so; anything else goes to expat, which decides,
so both readings give the same fields (tests/test_wecom_xml.py compares them).
"""

from __future__ import annotations

import re
from xml.parsers import expat


class MalformedXml(ValueError):
    pass


def _refuse(construct: str):  # noqa: ANN202 - an expat handler
    def handler(*_: object) -> None:
        raise MalformedXml(f"forbidden XML construct: {construct}")

    return handler


_refuse_dtd = _refuse("DTD")
_refuse_entity = _refuse("entity declaration")
_refuse_external = _refuse("external entity")


# Characters expat would refuse or rewrite — those XML does not allow, and carriage
# returns (read as line feeds) — are in no piece below, so a document holding one goes
# to expat.
_ODD = r"\x00-\x08\x0b-\x1f\ud800-\udfff\ufffe\uffff"
# A child: a simple name, then CDATA (ended by its first "]]>", as in XML: possessive, so
# never by a later one) or characters that need no entity and cannot close a CDATA
# section. XML's whitespace may separate children.
_CHILD = re.compile(
    rf"[ \t\n]*<([A-Za-z_][\w.-]*)>(?:<!\[CDATA\[((?:[^\]{_ODD}]++|\](?!\]>))*+)\]\]>|([^<&\]{_ODD}]*))</\1>", re.ASCII
)
_ROOT_END = re.compile(r"[ \t\n]*</xml>[ \t\n]*", re.ASCII)


def parse_fields(body: bytes | str) -> dict[str, str]:
    """The children of the root <xml> element as a flat mapping of tag → text.

    A child with children of its own (MemChangeList's <Item>s) becomes their texts joined
    by commas: no id on these platforms contains a comma.
    """
    fields = flat_fields(body)
    return fields if fields is not None else _parse_with_expat(body)


def flat_fields(body: bytes | str) -> dict[str, str] | None:
    """The fields of a document in the platforms' usual flat shape; None for any other
    document (which `parse_fields` gives to expat)."""
    if isinstance(body, bytes):
        if not body.startswith(b"<xml>"):
            return None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
    elif body.startswith("<xml>"):
        text = body
    else:
        return None
    fields: dict[str, str] = {}
    at, child = 5, _CHILD.match
    while found := child(text, at):
        name, cdata, characters = found.groups()
        fields[name] = (characters if cdata is None else cdata).strip()
        at = found.end()
    return fields if _ROOT_END.fullmatch(text, at) else None


def _parse_with_expat(body: bytes | str) -> dict[str, str]:
    if isinstance(body, str):
        try:
            body = body.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no XML document holds one
            raise MalformedXml("not UTF-8 text") from None
    fields: dict[str, str] = {}
    items: list[str] = []
    text: list[str] = []
    depth = 0

    def start(name: str, _attributes: dict[str, str]) -> None:
        nonlocal depth
        depth += 1
        if depth == 1 and name != "xml":
            raise MalformedXml(f"root element is <{name}>, expected <xml>")
        if depth == 2:
            items.clear()
        text.clear()

    def end(name: str) -> None:
        nonlocal depth
        if depth == 3:
            items.append("".join(text).strip())
        elif depth == 2:
            fields[name] = ",".join(items) if items else "".join(text).strip()
        text.clear()
        depth -= 1

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_dtd
    parser.EntityDeclHandler = _refuse_entity
    parser.ExternalEntityRefHandler = _refuse_external
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text.append
    try:
        parser.Parse(body, True)
    except expat.ExpatError as error:
        raise MalformedXml(f"not well-formed XML: {expat.errors.messages[error.code]} at line {error.lineno}") from None
    return fields
