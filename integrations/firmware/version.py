"""Firmware version strings as chargers report them, put in order.

Real firmware strings are not semantic versions: ``1.2.10``, ``V1.2.9``, ``fw-3.4.1-rc2``,
``2.0.1_ACME``, ``R4.10 build 312``. A version is read as its first dotted number (the
release, trailing zeros ignored: 1.2 == 1.2.0), then what follows: a pre-release tag
(alpha, beta, rc, pre, preview, dev, snapshot) sorts below the release, anything else (a
vendor's build or region suffix) above it, compared part by part (numbers as numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

MAX_LENGTH: Final = 100  # longer strings are not versions (OCPP's firmwareVersion: 50)
_RELEASE: Final = re.compile(r"\d+(?:\.\d+)*")
_PARTS: Final = re.compile(r"\d+|[a-z]+")
# Single letters stay builds: chargers write "1.2.10b3" for build 3 more often than beta 3.
# Pre-release tags in their order before the release.
_PRE_RELEASE: Final = {
    "dev": 1,
    "snapshot": 1,
    "alpha": 2,
    "beta": 3,
    "pre": 4,
    "preview": 4,
    "rc": 5,
}


class VersionError(ValueError):
    """A text that holds no version."""


@dataclass(frozen=True, slots=True, order=True)
class Version:
    """A parsed firmware version; compares as the firmware's age."""

    release: tuple[int, ...]
    # Negative: a pre-release of release (dev < alpha < beta < pre < rc); 0: the release
    # itself or a vendor build of it.
    stage: int
    rest: tuple[tuple[int, int | str], ...]
    text: str = ""


def _parts(text: str) -> tuple[tuple[int, int | str], ...]:
    # (0, number) sorts before (1, word): "1.0-2" < "1.0-a"; both are builds of 1.0.
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part) for part in _PARTS.findall(text.lower())
    )


def parse_version(text: str) -> Version:
    """Read a firmware string; VersionError when it holds no number or is too long."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_LENGTH:
        raise VersionError(f"not a firmware version: {text!r}")
    match = _RELEASE.search(text)
    if match is None:
        raise VersionError(f"no version number in {text!r}")
    release = [int(number) for number in match.group().split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    rest = _parts(text[match.end() :])
    stage = 0
    if rest and rest[0][0] == 1 and rest[0][1] in _PRE_RELEASE:
        stage = _PRE_RELEASE[str(rest[0][1])] - 10
        rest = rest[1:]
    return Version(tuple(release), stage, rest, text)


def compare_versions(left: str, right: str) -> int:
    """-1, 0 or 1 as left is older than, as old as or newer than right (VersionError)."""
    a, b = parse_version(left), parse_version(right)
    key_a, key_b = (a.release, a.stage, a.rest), (b.release, b.stage, b.rest)
    return (key_a > key_b) - (key_a < key_b)


def below(version: str | None, minimum: str) -> bool | None:
    """Whether version is older than minimum; None when either cannot be read."""
    if version is None:
        return None
    try:
        return compare_versions(version, minimum) < 0
    except VersionError:
        return None
