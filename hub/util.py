"""Small helpers shared across the hub."""

from __future__ import annotations

import re
import unicodedata

# Letters NFKD does not decompose into an ASCII base letter.
_TRANSLITERATE = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "ae", "ø": "o", "Ø": "o", "œ": "oe", "Œ": "oe", "đ": "d",
     "Đ": "d", "ł": "l", "Ł": "l", "þ": "th", "Þ": "th"}
)  # fmt: skip
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str, separator: str = "_") -> str:
    """Return text as a lower-case ASCII slug: 'Borne Nord #2' -> 'borne_nord_2'."""
    normalized = unicodedata.normalize("NFKD", text.translate(_TRANSLITERATE))
    ascii_text = normalized.encode("ascii", "ignore").decode("ascii").lower()
    return _NOT_SLUG.sub(separator, ascii_text).strip(separator)
