"""Cell text as offices type it, made plain: full-width digits, Latin letters, spaces and the signs of numbers,
dates and addresses become their ASCII forms; Chinese characters are left exactly as they are."""

from __future__ import annotations

import re

# Only the full-width forms of ASCII (U+FF01–U+FF5E hold them in ASCII order) that IMEs produce in ids, numbers,
# dates and e-mail addresses, and the ideographic space; NFKC would also fold compatibility ideographs, which
# may be the very characters of a person's name.
_FULL = "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺａｂｃｄｅｆｇｈｉｊｋｌｍｎｏｐｑｒｓｔｕｖｗｘｙｚ－．／：＠＿＋"
_HALF = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-./:@_+"
_TABLE = str.maketrans({**{ord(f): h for f, h in zip(_FULL, _HALF, strict=True)}, 0x3000: " ", 0xA0: " "})


_ANY = re.compile("[" + re.escape(_FULL) + "\u3000\u00a0]")


def has_wide(text: str) -> bool:
    """Whether `text` holds anything `plain` changes: one scan, so a file without any is not copied or touched."""
    return not text.isascii() and _ANY.search(text) is not None


def plain(value: str) -> str:
    """`value` with full-width digits, letters, spaces and - . / : @ _ + made half-width (ASCII text unchanged)."""
    return value if value.isascii() else value.translate(_TABLE)
