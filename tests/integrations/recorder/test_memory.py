"""What the recorder keeps in memory stays small."""

from __future__ import annotations

import tracemalloc

from hub.core import ReadOnlyDict
from integrations.recorder.backend import AttributeCache, attrs_hash, dumps, encode_attributes


def test_the_attribute_cache_keeps_compact_copies() -> None:
    cache = AttributeCache()
    sets = [
        ReadOnlyDict({"unit_of_measurement": "W", "friendly_name": f"CP {i} power"})
        for i in range(2000)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for number, attrs in enumerate(sets):
            _known, encoded, digest = encode_attributes(f"sensor.cp_{number}", attrs, cache)
            cache.remember(f"sensor.cp_{number}", attrs, encoded, digest, number)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # About 60 bytes of JSON and a few small objects each; orjson's own 4 KiB buffers
    # kept as they come would make this 8 MB.
    assert used / len(sets) < 700, f"{used / len(sets):.0f} bytes per attribute set"
    encoded = dumps(sets[5])
    assert cache.find(encoded, attrs_hash(encoded)) == 5


def test_a_fleet_of_entities_is_answered_without_encoding() -> None:
    """Every entity's unchanged attributes are known, however many entities there are."""
    cache = AttributeCache()
    entities = 100_000  # a fleet: far more than the hash cache keeps
    sets = [ReadOnlyDict({"friendly_name": f"CP {i} power"}) for i in range(entities)]
    for number, attrs in enumerate(sets):
        known, encoded, digest = encode_attributes(f"sensor.cp_{number}", attrs, cache)
        assert known is None
        cache.remember(f"sensor.cp_{number}", attrs, encoded, digest, number)
    for number, attrs in enumerate(sets):
        known, encoded, _digest = encode_attributes(f"sensor.cp_{number}", attrs, cache)
        assert (known, encoded) == (number, b"")
    # A new attributes object with the same content is found by its hash, when recent.
    again = ReadOnlyDict({"friendly_name": f"CP {entities - 1} power"})
    known, encoded, _digest = encode_attributes(f"sensor.cp_{entities - 1}", again, cache)
    assert known == entities - 1
    assert encoded
