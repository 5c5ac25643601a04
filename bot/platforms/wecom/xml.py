"""Safe parsing of the XML WeCom and the official account send.

defusedxml refuses DTDs and entities outright: a callback has no use for them, and they
are how XML bombs and external-entity reads get in.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring


class MalformedXml(ValueError):
    pass


def parse_fields(body: bytes | str) -> dict[str, str]:
    """The children of the root element as a flat mapping of tag → text.

    A child with children of its own (MemChangeList's <Item>s) becomes their texts joined
    by commas: no id on these platforms contains a comma.
    """
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise MalformedXml(f"forbidden XML construct: {type(error).__name__}") from None
    except ParseError as error:
        raise MalformedXml(f"not well-formed XML: {error}") from None
    if root.tag != "xml":
        raise MalformedXml(f"root element is <{root.tag}>, expected <xml>")
    return {child.tag: _text(child) for child in root}


def _text(element: Element) -> str:
    if len(element):
        return ",".join((item.text or "").strip() for item in element)
    return (element.text or "").strip()
