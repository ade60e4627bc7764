"""`analytics rollups zones list|add|remove` and `analytics rollups build`: zone day tiers
(docs/storage.md, "Zone day tiers"; PostgreSQL and Citus)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from analytics_app.cli.lazy import lazy
from analytics_core.timegrid import isoformat, zone

if TYPE_CHECKING:
    from analytics_app.config import Settings


def register_rollup_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `rollups zones list|add|remove` and `rollups build` to the `analytics` parser."""
    p = sub.add_parser("rollups", help="zone day tiers: fast day reads in zones (PostgreSQL)",
                       description="Reads by day in a zone that is not a whole number of days "
                                   "from UTC sum hours and 15-minute buckets unless the zone "
                                   "has a day tier. List the zones your users read in and "
                                   "run `analytics rollups build` once to backfill them; the "
                                   "export worker keeps them built from then on.")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    zones = actions.add_parser("zones", help="list, add or remove the zones with a day tier")
    what = zones.add_subparsers(dest="zones_action", required=True, metavar="ZONES_ACTION")
    listing = what.add_parser("list", help="the zones with a day tier and how far they are built")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=_lazy("list_command"))
    add = what.add_parser("add", help="give zones a day tier (built by `rollups build`)")
    add.add_argument("zones", nargs="+", metavar="ZONE", help="an IANA zone, e.g. Asia/Kolkata")
    add.set_defaults(handler=_lazy("add_command"))
    remove = what.add_parser("remove", help="drop a zone's day tier (its rows are deleted)")
    remove.add_argument("zone", metavar="ZONE")
    remove.set_defaults(handler=_lazy("remove_command"))
    build = actions.add_parser(
        "build", help="build the listed zones' days that ended an hour ago or more",
        description="Builds every org's local days of each listed zone, from its oldest "
                    "rollup on (a new zone backfills all history, 14 days per transaction) up "
                    "to the last local midnight an hour before now. Safe beside ingest, "
                    "queries and another build; prints progress on standard error.")
    build.set_defaults(handler=_lazy("build_command"))


def _lazy(name: str) -> Callable[[argparse.Namespace], int]:
    return lazy(__name__, name)


def list_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the zones with a day tier."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415

    with Application(settings) as app:
        app.preflight()
        tiers = app.zone_tiers()
    if args.json:
        print(json.dumps({"zones": [
            {"zone": name, "addedAt": isoformat(added, zone("UTC")), "orgs": orgs,
             "builtThrough": None if least is None else isoformat(least, zone(name))}
            for name, added, orgs, least in tiers]}, indent=2))
        return 0
    for name, added, orgs, least in tiers:
        built = ("not built yet (run `analytics rollups build`)" if least is None else
                 f"{orgs} orgs built through at least {isoformat(least, zone(name))}")
        print(f"{name}\tadded {isoformat(added, zone('UTC'))}\t{built}")
    print(f"{len(tiers)} zones with a day tier", file=sys.stderr)
    return 0


def add_command(args: argparse.Namespace, settings: Settings) -> int:
    """List zones for a day tier."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415

    with Application(settings) as app:
        app.preflight()
        for name in args.zones:
            added = app.add_zone_tier(name)
            print(f"{name}: {'added' if added else 'already listed'}")
    print("run `analytics rollups build` to build their days", file=sys.stderr)
    return 0


def remove_command(args: argparse.Namespace, settings: Settings) -> int:
    """Drop one zone's day tier."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415

    with Application(settings) as app:
        app.preflight()
        deleted = app.remove_zone_tier(args.zone)
    print(f"{args.zone}: removed, {deleted} day rows deleted")
    return 0


def build_command(_args: argparse.Namespace, settings: Settings) -> int:
    """Build the listed zones' days, with progress on standard error."""
    from analytics_app.bootstrap.application import Application  # noqa: PLC0415

    started = time.monotonic()
    step = {"last": started}

    def progress(name: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - step["last"] >= 2.0:
            step["last"] = now
            print(f"{name}: {done}/{total} orgs", file=sys.stderr, flush=True)

    with Application(settings) as app:
        app.preflight()
        report = app.build_zone_tiers(progress)
    print(f"built {report.days} org-days in {report.zones} zones for {report.orgs} orgs "
          f"({report.transactions} transactions, {time.monotonic() - started:.1f} s)")
    return 0
