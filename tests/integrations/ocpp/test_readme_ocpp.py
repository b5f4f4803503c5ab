"""The README's OCPP settings example is a valid ``ocpp:`` section, as written."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from integrations.ocpp import CONFIG_SCHEMA

ROOT = Path(__file__).resolve().parents[3]


def test_readme_ocpp_settings_example_is_valid() -> None:
    text = ROOT.joinpath("README.md").read_text()
    section = text[text.index("### OCPP services, by functional block") :]
    block = re.findall(r"```yaml\n(.*?)```", section, re.S)[0]
    config = CONFIG_SCHEMA(yaml.safe_load(block)["ocpp"])
    assert config["master_pass_group"] == "MASTER"
    assert [token["id"] for token in config["id_tokens"]] == ["04A2B3C4", "LOST-CARD"]
    assert config["listeners"][0]["certfile"] == ["server-rsa.pem", "server-ecdsa.pem"]
    assert config["certificates"]["ocsp_pass_through"] is False
