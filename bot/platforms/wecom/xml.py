"""Safe, fast parsing of the flat XML that WeCom and the official account send.

DTDs and entity declarations are refused outright — a callback has no use for them, and
they are how XML bombs and external-entity reads get in — and an undeclared entity is a
parse error. The stdlib's expat is driven directly: these messages are one level deep,
and building an ElementTree (which also re-imports expat for every parser) would cost
more than the crypto.
"""

from __future__ import annotations

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


def parse_fields(body: bytes | str) -> dict[str, str]:
    """The children of the root <xml> element as a flat mapping of tag → text.

    A child with children of its own (MemChangeList's <Item>s) becomes their texts joined
    by commas: no id on these platforms contains a comma.
    """
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
