"""Command line: ``laserd serve | migrate | check-config | create-admin | simulate | version``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from laserd import __version__
from laserd.settings import ConfigError, Settings, dump_json, load_settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="laserd", description="Networked laser appliance daemon.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument(
            "--config",
            metavar="FILE",
            help="settings file (default: $LASERD_CONFIG, else /etc/laserd/laserd.toml)",
        )
        return sp

    add("serve", "run the daemon")
    add("migrate", "apply pending database migrations and exit")
    add("check-config", "validate the settings and print them (secrets masked)")
    add("version", "print the version")
    add("simulate", "run the simulated GRBL controller alone; prints its pty path")
    ca = add("create-admin", "create an administrator account")
    ca.add_argument("--username", required=True)
    ca.add_argument("--email", required=True)
    ca.add_argument("--full-name", default="")
    ca.add_argument(
        "--password-stdin", action="store_true", required=True, help="read the password from stdin"
    )
    return p


async def _migrate(settings: Settings) -> int:
    from laserd import db
    from laserd.settings import ensure_state_dirs

    ensure_state_dirs(settings)
    conn = await db.connect(settings.db_path)
    try:
        applied = await db.migrate(conn)
        version = await db.current_version(conn)
    finally:
        await conn.close()
    for m in applied:
        print(f"applied {m.version:04d}_{m.name}")
    print(f"schema version {version}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(__version__)
        return 0
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"laserd: {exc}", file=sys.stderr)
        return 2
    if args.command == "check-config":
        print(dump_json(settings))
        return 0
    if args.command == "migrate":
        from laserd.db import MigrationError

        try:
            return asyncio.run(_migrate(settings))
        except MigrationError as exc:
            print(f"laserd: {exc}", file=sys.stderr)
            return 1
    if args.command == "serve":
        from laserd.serve import run

        return run(settings, args.config)
    if args.command == "simulate":
        from laserd.grbl.sim import run_simulator_cli

        return run_simulator_cli(settings)
    if args.command == "create-admin":
        from laserd.auth.cli import create_admin_cli

        password = sys.stdin.readline().rstrip("\r\n")
        return create_admin_cli(settings, args.username, args.email, password, args.full_name)
    return 2  # argparse already refuses unknown commands


if __name__ == "__main__":
    sys.exit(main())
