"""Small helpers: slugs, and the garbage collector policy (in a child process: it is global)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from hub.util import slugify


def test_slugify() -> None:
    assert slugify("Borne Nord #2") == "borne_nord_2"
    assert slugify("Straße 7 Ladepunkt") == "strasse_7_ladepunkt"


def test_gc_policy_freezes_and_logs_slow_collections() -> None:
    code = textwrap.dedent(
        """
        import gc, logging, sys
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
        from hub import util
        assert util.freeze_long_lived("nothing yet") is False  # only after tuning
        assert util.freeze_new_long_lived() is False
        util.tune_gc_after_start()
        assert gc.get_threshold() == util.GC_THRESHOLDS
        frozen = gc.get_freeze_count()
        keep = [[i] for i in range(50_000)]
        assert util.freeze_long_lived("a test burst") is True
        assert gc.get_freeze_count() >= frozen + 50_000
        more = [[i] for i in range(10_000)]
        frozen = gc.get_freeze_count()
        assert util.freeze_new_long_lived() is True
        assert gc.get_freeze_count() >= frozen + 10_000 and gc.get_count()[0] < 100
        util.SLOW_GC = 0.0
        gc.collect()
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "long-lived objects after a test burst" in result.stdout
    assert "garbage collection of generation 2 took" in result.stdout
