"""``evhub simulate``: virtual OCPP charge points against a central system."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from hub.commands import CliCommands
from hub.hookspecs import hookimpl

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@hookimpl
def evhub_cli_commands(commands: CliCommands) -> None:
    """Add ``evhub simulate``."""
    simulate = commands.add(
        "simulate", "run virtual OCPP charge points against a central system", cmd_simulate
    )
    simulate.add_argument(
        "--url", required=True, help="central system base URL, e.g. ws://127.0.0.1:9000/ocpp"
    )
    simulate.add_argument("--count", type=int, default=1, help="number of charge points")
    simulate.add_argument("--version", choices=["1.6", "2.0.1"], default="1.6", help="OCPP version")
    simulate.add_argument(
        "--scenario",
        default="normal",
        help="idle, normal, fault, offline, reboot, wrong-password or tamper (comma-separated)",
    )
    simulate.add_argument("--password", default=None, help="HTTP Basic auth password")
    simulate.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds"
    )
    simulate.add_argument("--id-prefix", default="SIM-", help="charge point id prefix")
    simulate.add_argument("--speed", type=float, default=1.0, help="time acceleration factor")
    simulate.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run simulated charge points until SIGINT or SIGTERM (or --duration)."""
    from integrations.ocpp import simulator

    if args.count < 1 or args.speed <= 0:
        print("evhub: --count must be at least 1 and --speed positive", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level.upper(), format=LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"
    )
    try:
        return asyncio.run(
            simulator.simulate_until_signalled(
                args.url,
                args.count,
                args.version,
                args.scenario,
                password=args.password,
                duration=args.duration,
                id_prefix=args.id_prefix,
                speed=args.speed,
            )
        )
    except ValueError as err:
        print(f"evhub: {err}", file=sys.stderr)
        return 2
