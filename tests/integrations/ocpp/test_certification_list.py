"""The README's list of OCA certification test cases is the tests' own: every case it lists as
covered has a test named after it, and its counts per block are those the tests give today.
Test names are read with `ast` (tests/integrations/ocpp/certification.py); nothing is run.
When this fails after tests were added or renamed, `scripts/certification --write` rewrites
the README section."""

from __future__ import annotations

import re

import pytest

from tests.integrations.ocpp import certification as cert

ROW = re.compile(r"^\| (?P<label>[^|]+?) \| (?P<done>\d+) / (?P<total>\d+) \| (?P<ids>[^|]*) \|$")
CASE_ID = re.compile(r"\bTC_[A-Z0-9_]+?_CSMS\b")


def readme_tables() -> tuple[dict[tuple[str, str, str], tuple[int, int]], set[str]]:
    """The README section's per-block counts and the ids it lists as covered."""
    section = cert.section_in(cert.README.read_text(encoding="utf-8"))
    assert section is not None, f"README.md has no '{cert.HEADING}' subsection"
    counts: dict[tuple[str, str, str], tuple[int, int]] = {}
    listed: set[str] = set()
    version = profile = ""
    for line in section.splitlines():
        if line.startswith("#### OCPP "):
            version, profile = line.removeprefix("#### OCPP ").strip(), ""
        elif line.startswith("**") and line.endswith("**"):
            profile = line.strip("*")
        elif row := ROW.match(line):
            label = row["label"]
            key = (version, profile or label, label)
            counts[key] = (int(row["done"]), int(row["total"]))
            listed.update(CASE_ID.findall(row["ids"]))
    return counts, listed


def test_every_case_the_readme_lists_has_its_test() -> None:
    covered, _ = cert.coverage()
    _, listed = readme_tables()
    assert listed, "the README lists no covered case"
    missing = sorted(listed - covered.keys())
    assert not missing, (
        f"the README lists {missing} as covered, but no test in tests/integrations/ocpp is "
        "named after them; run scripts/certification --write"
    )


def test_readme_counts_per_block_are_the_tests() -> None:
    covered, _ = cert.coverage()
    counts, _ = readme_tables()
    expected = cert.block_counts(covered)
    differ = {
        key: (counts.get(key), expected.get(key))
        for key in counts.keys() | expected.keys()
        if counts.get(key) != expected.get(key)
    }
    assert not differ, (
        "README (covered, cases) per (version, profile, block) differ from the tests' "
        f"(README, tests): {differ}; run scripts/certification --write"
    )
    section = cert.section_in(cert.README.read_text(encoding="utf-8"))
    assert section is not None
    assert cert.closing_note(covered) in section, "the closing note's counts are out of date"


def test_every_tc_test_names_listed_cases() -> None:
    """A test named test_tc_... must name case ids of the documents (TC_048 has variants 1 to
    4, so a test playing them is test_tc_048_1_2_3_4_csms_...): else it counts for nothing."""
    _, unmatched = cert.coverage()
    assert not unmatched, f"tests named after no listed case: {unmatched}"


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        ("test_tc_b_01_csms_cold_boot_accepted", ["TC_B_01_CSMS"]),
        ("test_tc_e_17_20_csms_stop", ["TC_E_17_CSMS", "TC_E_20_CSMS"]),
        ("test_tc_e_30_33_34_csms_x", ["TC_E_30_CSMS", "TC_E_33_CSMS", "TC_E_34_CSMS"]),
        ("test_tc_023_1_csms_authorize_invalid", ["TC_023_1_CSMS"]),
        ("test_tc_021_csms_change_configuration_16", ["TC_021_CSMS"]),
        ("test_tc_043_4_5_csms_x", ["TC_043_4_CSMS", "TC_043_5_CSMS"]),
        ("test_tc_051_052_csms_x", ["TC_051_CSMS", "TC_052_CSMS"]),
        ("test_tc_b_02_csms", ["TC_B_02_CSMS"]),
        ("test_tc_b_csms_no_number", []),
        ("test_tc_b_01_no_csms", []),
        ("test_tc_7_csms_x", []),
        ("test_tc_bb_01_csms_x", []),
    ],
)
def test_case_ids_from_test_names(name: str, ids: list[str]) -> None:
    assert cert.case_ids(name) == ids


def test_the_list_is_consistent() -> None:
    assert len(cert.BY_ID) == len(cert.CASES), "a case is listed twice"
    for case in cert.CASES:
        assert re.fullmatch(r"TC_([A-P]_\d{2}|\d{3}(_\d)?)_CSMS", case.id), case.id
        profiles = cert.PROFILES_201 if case.version == cert.V201 else cert.PROFILES_16
        assert case.profile in profiles, case
        assert case.name, case
    rows = cert.rows({"TC_B_01_CSMS": ["test"]})
    by_id = {row[0]: row for row in rows}
    assert by_id["TC_B_01_CSMS"][3] == cert.COVERED
    assert by_id["TC_B_02_CSMS"][3] == cert.NOT_YET
    assert by_id["TC_I_01_CSMS"][3] == cert.OUT_OF_SCOPE


def test_the_section_ends_at_the_next_subsection() -> None:
    """--write replaces this subsection only, not one another engineer adds after it."""
    readme = f"## A\n\n{cert.HEADING}\n\ntext\n\n#### OCPP 2.0.1\n\n### Other\n\nkept\n## B\n"
    assert cert.section_in(readme) == f"{cert.HEADING}\n\ntext\n\n#### OCPP 2.0.1\n\n"
    assert cert.section_in(f"{cert.HEADING}\n\nlast\n") == f"{cert.HEADING}\n\nlast\n"
    assert cert.section_in("## A\n") is None
