"""Firmware version strings as chargers report them."""

from __future__ import annotations

import pytest

from integrations.firmware.version import VersionError, below, compare_versions


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1.2.9", "1.2.10"),
        ("1.2.10", "1.10.0"),
        ("V1.2.9", "v1.2.10"),
        ("fw-3.4.1-rc2", "fw-3.4.1"),
        ("3.4.1-beta.1", "3.4.1-rc1"),
        ("2.0.1", "2.0.1_ACME"),
        ("2.0.1_ACME", "2.0.2"),
        ("R4.10 build 311", "R4.10 build 312"),
        ("1.2.10b3", "1.2.10b4"),
        ("1.9", "1.10"),
        ("2023.04", "2024.01"),
    ],
)
def test_order(older: str, newer: str) -> None:
    assert compare_versions(older, newer) == -1
    assert compare_versions(newer, older) == 1


@pytest.mark.parametrize(("a", "b"), [("1.2", "1.2.0"), ("V1.2.0", "1.2"), ("2.0.1 ", "2.0.1")])
def test_same(a: str, b: str) -> None:
    assert compare_versions(a, b) == 0


@pytest.mark.parametrize("text", ["", "   ", "no digits", "x" * 101, None, 12])
def test_not_a_version(text: object) -> None:
    with pytest.raises(VersionError):
        compare_versions(text, "1.0")  # type: ignore[arg-type]
    assert below(text if isinstance(text, str) else None, "1.0") is None


def test_below() -> None:
    assert below("1.2.9", "1.2.10") is True
    assert below("1.2.10", "1.2.10") is False
    assert below("1.2.10-acme3", "1.2.10") is False
    assert below("1.2.10-rc3", "1.2.10") is True


def test_minimums_in_configuration() -> None:
    """A version YAML reads as a number is refused (2.10 would be 2.1); the most specific
    minimum wins; a raw section's bad entries are left out."""
    import voluptuous as vol

    from integrations.firmware import CONFIG_SCHEMA, minimums_of

    with pytest.raises(vol.Invalid, match="quote the version"):
        CONFIG_SCHEMA({"minimum_versions": [{"vendor": "ACME", "version": 2.10}]})
    with pytest.raises(vol.Invalid, match="two minimum versions"):
        CONFIG_SCHEMA(
            {
                "minimum_versions": [
                    {"vendor": "ACME", "version": "1"},
                    {"vendor": "acme", "version": "2"},
                ]
            }
        )
    config = CONFIG_SCHEMA(
        {
            "minimum_versions": [
                {"vendor": "ACME", "model": "DC50", "version": "2.4.1"},
                {"vendor": "ACME", "version": "2.0"},
            ]
        }
    )
    assert config["batch_size"] == 2
    minimums = minimums_of(config)
    assert minimums.of("acme", "dc50").version == "2.4.1"  # type: ignore[union-attr]
    assert minimums.of("ACME", "AC22").version == "2.0"  # type: ignore[union-attr]
    assert minimums.of("Other", "DC50") is None
    raw = minimums_of({"minimum_versions": [{"vendor": "ACME"}, {"vendor": "X", "version": "1"}]})
    assert [m.vendor for m in raw.all] == ["X"]
    assert minimums_of({"minimum_versions": "nonsense"}).all == []


def test_readme_configuration_is_valid() -> None:
    """The README's firmware example validates as written."""
    import re
    from pathlib import Path

    import yaml

    from integrations.firmware import CONFIG_SCHEMA, minimums_of

    text = Path(__file__).resolve().parents[3].joinpath("README.md").read_text()
    section = text[text.index("### Firmware campaigns") : text.index("## Connecting OCPP")]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, re.S)
    config = CONFIG_SCHEMA(yaml.safe_load(block)["firmware"])
    assert minimums_of(config).of("ACME", "AC22").version == "2.0"  # type: ignore[union-attr]
