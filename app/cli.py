"""The `chargeslot` command: migrate, seed-demo, create-user, serve."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from tortoise import Tortoise

from app.config import ConfigError, Settings, load_settings
from app.db import close_db, init_db, migrate
from app.errors import DomainError, ValidationFailed
from app.models import Role, Station


def _print_progress(event: str, app_label: str, name: str) -> None:
    if event.endswith("start"):
        print(f"  applying {app_label}.{name} …", flush=True)


async def _migrate(settings: Settings) -> None:
    print(f"Migrating {settings.database_url.split('@')[-1]}", flush=True)
    await migrate(settings, progress=_print_progress)
    await Tortoise.close_connections()
    print("Migrations applied.", flush=True)


async def _with_db(settings: Settings, work: Callable[[], Awaitable[Any]]) -> Any:
    await init_db(settings)
    try:
        return await work()
    finally:
        await close_db()


async def _seed(settings: Settings, only_if_empty: bool = False) -> None:
    from app.seed import seed_demo

    async def work() -> None:
        if only_if_empty and await Station.exists():
            return
        print("Seeding demo data …", flush=True)
        stations, users = await seed_demo(progress=True)
        print(f"Demo data ready ({stations} stations and {users} users added).", flush=True)

    await _with_db(settings, work)


def _read_password(args: argparse.Namespace) -> str:
    """``--password`` is kept for scripts; without it the password is asked for (or read from
    stdin), so it stays out of shell history and process listings."""
    if args.password is not None:
        password: str = args.password
        return password
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != password:
        raise ValidationFailed([{"loc": ["password"], "msg": "The two passwords differ."}])
    return password


async def _create_user(settings: Settings, args: argparse.Namespace, password: str) -> None:
    from app.accounts import create_user

    async def work() -> None:
        user = await create_user(args.email, args.username, password, Role(args.role))
        print(f"Created {user.role} {user.email} (id {user.id}).")

    await _with_db(settings, work)


def _create_user_command(settings: Settings, args: argparse.Namespace) -> None:
    from app.accounts import validate_new_account

    password = _read_password(args)
    validate_new_account(args.email, args.username, password)  # before touching the database
    asyncio.run(_create_user(settings, args, password))


def _serve(settings: Settings) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from app import create_app
    from app.seed import DEMO_USERS

    asyncio.run(_migrate(settings))
    asyncio.run(_seed(settings, only_if_empty=True))
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.accesslog = None
    logging.getLogger("hypercorn.error").propagate = False  # Hypercorn prints its own lines
    url = f"http://{settings.host}:{settings.port}"
    print(f"\nChargeslot is running at {url}")
    print(f"  API docs: {url}/docs   kiosk: {url}/kiosk/1   operator: {url}/operator")
    print("  Demo sign-ins:")
    for demo in DEMO_USERS:
        print(f"    {demo.role.value:<9} {demo.email}  password: {demo.password}")
    print("Press Ctrl+C to stop.\n", flush=True)
    try:
        import uvloop

        uvloop.run(serve(create_app(settings), config))  # type: ignore[arg-type]
    except KeyboardInterrupt:
        pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chargeslot", description="Chargeslot: EV charging slot booking.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply database migrations to DATABASE_URL")
    sub.add_parser("seed-demo", help="add the demo stations and users (idempotent)")
    user = sub.add_parser("create-user", help="create a user account")
    user.add_argument("--email", required=True)
    user.add_argument("--username", required=True)
    user.add_argument("--password", help="omit to be asked for it (or to read it from stdin)")
    user.add_argument("--role", choices=[r.value for r in Role], default=Role.DRIVER.value)
    sub.add_parser("serve", help="migrate, seed when empty, and serve the embedded single-process site")
    simulator = sub.add_parser("simulate-charger", help="run a simulated OCPP 1.6J charge point against a server")
    simulator.add_argument("--url", required=True, help="ws://HOST:PORT/ocpp/IDENTITY")
    simulator.add_argument("--key", required=True, help="the charge point's auth key")
    simulator.add_argument("--connectors", type=int, default=1, choices=range(1, 11), metavar="N")
    simulator.add_argument("--meter-seconds", type=float, default=10.0, help="meter value interval while charging")
    return parser


def _simulate(args: argparse.Namespace) -> int:
    from app.simulator import simulate

    try:
        asyncio.run(simulate(args.url, args.key, args.connectors, args.meter_seconds))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:  # a refused handshake, a server that went away: say so, plainly
        print(f"Simulated charger stopped: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "simulate-charger":
        return _simulate(args)  # a client of a server: none of the server's settings apply
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        if args.command == "migrate":
            asyncio.run(_migrate(settings))
        elif args.command == "seed-demo":
            asyncio.run(_migrate(settings))
            asyncio.run(_seed(settings))
        elif args.command == "create-user":
            _create_user_command(settings, args)
        elif args.command == "serve":
            _serve(settings)
    except DomainError as exc:
        errors = exc.extra.get("errors") or [{"loc": [], "msg": exc.detail}]
        for error in errors:
            field = f"{error['loc'][-1]}: " if error["loc"] else ""
            print(f"Error: {field}{error['msg']}", file=sys.stderr)
        return 1
    return 0
