"""Text folding for keyword matching: pure functions, no I/O."""

from __future__ import annotations

import unicodedata

import opencc

# Loading the dictionaries costs milliseconds; a conversion costs microseconds.
_TO_SIMPLIFIED = opencc.OpenCC("t2s")


def normalise(text: str) -> str:
    """Fold width (NFKC), case and script (traditional to simplified Chinese), so ＶＩＰ,
    Vip and vip match alike, and so do 麵包 and 面包.

    OpenCC converts by phrase, so a word may fold differently alone than inside a longer
    one (乾 alone becomes 干, 乾隆 stays): keywords match the folded text, not the raw one.
    """
    return _TO_SIMPLIFIED.convert(unicodedata.normalize("NFKC", text).casefold())

