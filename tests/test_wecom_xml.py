"""The quick reading of the platforms' flat XML gives exactly what expat gives, and takes
the documents the platforms actually send."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.platforms.wecom.xml import MalformedXml, _parse_with_expat, flat_fields, parse_fields
from tests.test_wecom_updates import ADD_CONTACT

ENVELOPE = (
    "<xml><ToUserName><![CDATA[wwcorp]]></ToUserName><Encrypt><![CDATA[RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6a"
    "M/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT"
    "+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMn"
    "vw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6"
    "BpNelZpS]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
)
STAFF_TEXT = (
    "<xml><ToUserName><![CDATA[wwcorp]]></ToUserName><FromUserName><![CDATA[zhangsan]]></FromUserName>"
    "<CreateTime>1348831860</CreateTime><MsgType><![CDATA[text]]></MsgType>"
    "<Content><![CDATA[今天的面包几点出炉？ <b>&amp;</b> ]]]></Content><MsgId>1234567890123456</MsgId>"
    "<AgentID>1</AgentID></xml>"
)


@pytest.mark.parametrize("document", [ENVELOPE, STAFF_TEXT, ADD_CONTACT])
def test_what_the_platforms_send_is_read_quickly_and_alike(document: str) -> None:
    quick = flat_fields(document.encode())
    assert quick is not None, "the platforms' usual shape must not need expat"
    assert quick == _parse_with_expat(document.encode())


def test_cdata_ends_at_its_first_close_even_when_a_later_one_would_fit() -> None:
    document = "<xml><A><![CDATA[x]]>y<![CDATA[z]]></A></xml>"
    assert parse_fields(document) == {"A": "xyz"}  # expat's reading: three pieces of text


@pytest.mark.parametrize(
    "document",
    [
        "<xml><A>a &amp; b</A></xml>",  # an entity
        "<xml><A>line\r\nnext</A></xml>",  # XML reads CR LF as LF
        "<xml><MemChangeList><Item>a</Item><Item>b</Item></MemChangeList></xml>",  # nested
        '<?xml version="1.0" encoding="UTF-8"?><xml><A>a</A></xml>',  # a declaration
        "<xml><A b='1'>a</A></xml>",  # an attribute
        "<xml><A/></xml>",  # an empty-element tag
    ],
)
def test_other_shapes_go_to_expat_and_read_the_same(document: str) -> None:
    assert flat_fields(document) is None
    assert parse_fields(document) == _parse_with_expat(document)


@pytest.mark.parametrize(
    "document",
    [
        "<xml><A>\x01</A></xml>",  # a control character XML forbids
        "<xml><A>a]]>b</A></xml>",  # "]]>" outside CDATA
        "<xml><A>a</A>",  # no end
        "<xml><A>a</B></xml>",  # mismatched
        "<xml><A>a</A></xml><xml></xml>",  # two roots
    ],
)
def test_a_broken_document_is_refused_as_expat_refuses_it(document: str) -> None:
    with pytest.raises(MalformedXml):
        parse_fields(document)


_PIECES = [
    "<xml>", "</xml>", "<A>", "</A>", "<B>", "</B>", "<Item>", "</Item>", "<![CDATA[", "]]>", "]]", "]", ">",
    "&amp;", "&lt;", "&", "<", " ", "\n", "\r", "\t", "\x01", "\x0c", "é", "面包", "\ufffe", "x", "12", "<A/>",
    "<A b='1'>", "<!-- c -->", "<?p x?>", "<!DOCTYPE x>",
]
_TEXT = st.lists(st.sampled_from(_PIECES + ["x", "y", " "]), max_size=6).map("".join)
_CHILD = st.tuples(
    st.sampled_from(["", " ", "\n  ", "\t"]),
    st.sampled_from(["A", "B", "Content", "a.b-c_1", "xml", "MemChangeList"]),
    st.one_of(_TEXT, _TEXT.map(lambda text: f"<![CDATA[{text}]]>"), _TEXT.map(lambda text: f"<Item>{text}</Item>")),
).map(lambda child: f"{child[0]}<{child[1]}>{child[2]}</{child[1]}>")
# Mostly well-formed documents of the platforms' shape with odd content, and some noise.
_DOCUMENTS = st.one_of(
    st.tuples(st.lists(_CHILD, max_size=5), st.sampled_from(["", " ", "\n", "x", "<xml></xml>"])).map(
        lambda doc: "<xml>" + "".join(doc[0]) + "</xml>" + doc[1]
    ),
    st.lists(st.sampled_from(_PIECES), max_size=12).map(lambda pieces: "<xml>" + "".join(pieces)),
)


def _outcome(parse, document: str | bytes) -> object:  # noqa: ANN001 - either reading
    try:
        return parse(document)
    except MalformedXml:
        return MalformedXml


@settings(max_examples=3000, deadline=None)
@given(_DOCUMENTS, st.booleans())
def test_both_readings_agree_on_any_document(document: str, as_bytes: bool) -> None:
    body: str | bytes = document.encode("utf-8", "surrogatepass") if as_bytes else document
    assert _outcome(parse_fields, body) == _outcome(_parse_with_expat, body)
