"""OCPP payload validation: compiled fastjsonschema path against the ocpp package's.

Workload: an OCPP 1.6 MeterValues (1 connector, 10 sampledValues) and a StatusNotification,
validated alternately N times (default 200,000) with `validate_call`, and M times (default
5,000) with the ocpp package's `ocpp.messages._validate_payload` (jsonschema, the reference).
Schemas are compiled before timing, for both. Also times `parse_frame` + `validate_call` on
the raw frames. Prints µs/message for each and the ratio.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any

import orjson
from ocpp.messages import Call as RefCall  # type: ignore[import-untyped]
from ocpp.messages import _validate_payload

from integrations.ocpp.protocol import Call, OcppVersion, parse_frame, validate_call

TS = "2026-11-24T10:00:00.000Z"

METER_VALUES = {
    "connectorId": 1,
    "transactionId": 1234,
    "meterValue": [
        {
            "timestamp": TS,
            "sampledValue": [
                {
                    "value": "123456.7",
                    "context": "Sample.Periodic",
                    "format": "Raw",
                    "measurand": "Energy.Active.Import.Register",
                    "location": "Outlet",
                    "unit": "Wh",
                },
                {"value": "7.4", "measurand": "Power.Active.Import", "unit": "kW"},
                *(
                    {"value": "16.02", "measurand": "Current.Import", "phase": p, "unit": "A"}
                    for p in ("L1", "L2", "L3")
                ),
                *(
                    {"value": "231.4", "measurand": "Voltage", "phase": p, "unit": "V"}
                    for p in ("L1-N", "L2-N", "L3-N")
                ),
                {"value": "50.0", "measurand": "Frequency", "unit": "Hertz"},
                {
                    "value": "32.5",
                    "measurand": "Temperature",
                    "location": "Body",
                    "unit": "Celsius",
                },
            ],
        }
    ],
}
STATUS_NOTIFICATION = {
    "connectorId": 1,
    "errorCode": "NoError",
    "status": "Charging",
    "timestamp": TS,
}
MESSAGES = [("MeterValues", METER_VALUES), ("StatusNotification", STATUS_NOTIFICATION)]


def timed(run: Callable[[int], None], iterations: int) -> float:
    """Return µs per message for `run(iterations)`, with the garbage collector off."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        run(iterations)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
    return elapsed / iterations * 1e6


def compiled(iterations: int) -> None:
    """Validate with the compiled schemas."""
    calls = [Call(str(i), action, payload) for i, (action, payload) in enumerate(MESSAGES)]
    version = OcppVersion.V16
    for n in range(iterations):
        validate_call(version, calls[n & 1])


def parsed_and_compiled(iterations: int) -> None:
    """Parse the raw frame, then validate with the compiled schemas."""
    frames = [
        orjson.dumps([2, str(i), action, payload]) for i, (action, payload) in enumerate(MESSAGES)
    ]
    version = OcppVersion.V16
    for n in range(iterations):
        frame = parse_frame(frames[n & 1], version)
        validate_call(version, frame)  # type: ignore[arg-type]


def reference(iterations: int) -> None:
    """Validate with the ocpp package's jsonschema path."""
    calls = [RefCall(str(i), action, payload) for i, (action, payload) in enumerate(MESSAGES)]
    for n in range(iterations):
        _validate_payload(calls[n & 1], "1.6")


def compiled_one(action: str, payload: dict[str, Any]) -> Callable[[int], None]:
    """Return a run validating one message with the compiled schemas."""
    call = Call("1", action, payload)

    def run(iterations: int) -> None:
        for _ in range(iterations):
            validate_call(OcppVersion.V16, call)

    return run


def reference_one(action: str, payload: dict[str, Any]) -> Callable[[int], None]:
    """Return a run validating one message with the ocpp package's path."""
    call = RefCall("1", action, payload)

    def run(iterations: int) -> None:
        for _ in range(iterations):
            _validate_payload(call, "1.6")

    return run


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--iterations", type=int, default=200_000)
    parser.add_argument("-m", "--reference-iterations", type=int, default=5_000)
    args = parser.parse_args()

    # Warm up: compile the schemas (both paths cache them) and settle the interpreter.
    compiled(1_000)
    parsed_and_compiled(1_000)
    reference(100)

    ours = timed(compiled, args.iterations)
    ours_parsed = timed(parsed_and_compiled, args.iterations)
    theirs = timed(reference, args.reference_iterations)
    print("OCPP 1.6 MeterValues (10 sampledValues) + StatusNotification, alternating")
    print(f"compiled (fastjsonschema)  {ours:8.2f} µs/message  ({args.iterations:,} messages)")
    print(
        f"parse_frame + compiled     {ours_parsed:8.2f} µs/message  ({args.iterations:,} messages)"
    )
    print(
        f"reference (ocpp jsonschema) {theirs:7.2f} µs/message  "
        f"({args.reference_iterations:,} messages)"
    )
    print(f"ratio reference / compiled {theirs / ours:8.1f}x")
    for action, payload in MESSAGES:
        one_ours = timed(compiled_one(action, payload), args.iterations // 2)
        one_ref = timed(reference_one(action, payload), args.reference_iterations // 2)
        print(
            f"  {action:<20} compiled {one_ours:7.2f} µs  reference {one_ref:8.2f} µs  "
            f"ratio {one_ref / one_ours:6.1f}x"
        )


if __name__ == "__main__":
    main()
