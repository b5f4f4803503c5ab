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


# Generation-0 collections run every 700 allocations by default: with tens of thousands of
# long-lived objects (states, registry entries, connections) each young collection is cheap
# but the older generations' full passes stall the loop for tens of milliseconds. After
# start-up, what exists is frozen (moved to a permanent generation the collector skips) and
# the thresholds are raised, so collections are rarer and only look at new objects.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc_after_start() -> None:
    """Freeze what start-up made and raise the collector's thresholds (process-wide)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
