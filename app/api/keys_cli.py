"""``python launch.py keys create --user NAME [--admin] [--label TEXT]`` · ``keys list`` · ``keys revoke ID``.

Works on the workspace's database directly (the studio may be running: SQLite WAL allows it);
a key is printed once, at creation, and never again.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(parser: argparse.ArgumentParser) -> None:
    """Add the ``keys`` subcommands; without a subcommand launch.py starts the studio as before."""
    commands = parser.add_subparsers(dest="command", metavar="{keys}")
    keys = commands.add_parser("keys", help="create, list or revoke API keys")
    keys.add_argument("--workspace", default=argparse.SUPPRESS, help="data folder (as for the studio)")
    actions = keys.add_subparsers(dest="keys_action", required=True, metavar="{create,list,revoke}")
    create = actions.add_parser("create", help="create a key for a user (printed once)")
    create.add_argument("--user", required=True, help="the user the key belongs to")
    create.add_argument("--admin", action="store_true", help="the key sees and cancels every user's jobs")
    create.add_argument("--label", default="", help="a note, e.g. the script or machine using it")
    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--user", default=None, help="only this user's keys")
    listing.add_argument("--json", action="store_true", help="print JSON")
    revoke = actions.add_parser("revoke", help="revoke a key by its id (see `keys list`)")
    revoke.add_argument("key_id")
    for sub in (create, listing, revoke):
        sub.add_argument("--workspace", default=argparse.SUPPRESS, help="data folder (as for the studio)")


def run(args: argparse.Namespace) -> int:
    from app.db import open_db
    from core.errors import AppError
    from app.settings import load_settings

    from .auth import KeyStore, describe
    from .models import TABLES
    from .quotas import UserDirectory

    try:
        settings = load_settings(getattr(args, "workspace", None))
        settings.ensure_dirs()
        database = open_db(settings)  # the workspace's SQLite, or the team's database_url
        with database.connection_context():
            database.create_tables(TABLES, safe=True)
        store = KeyStore(is_admin_user=UserDirectory(settings.workspace / "users").is_admin)
        if args.keys_action == "create":
            row, key = store.create(args.user, admin=args.admin, label=args.label)
            print(f"API key for '{row.user}' (id {row.id}{', admin' if row.admin else ''}):\n\n    {key}\n\n"
                  "Store it now: it is not shown again. Send it as 'Authorization: Bearer <key>'.\n"
                  "请立即保存：密钥只显示这一次。调用时使用 'Authorization: Bearer <密钥>'。")
        elif args.keys_action == "list":
            rows = [describe(r) for r in store.list(args.user)]
            if args.json:
                print(json.dumps(rows, ensure_ascii=False, indent=2))
            elif not rows:
                print("No API keys yet. Create one: python launch.py keys create --user NAME")
            else:
                print(f"{'id':<13} {'user':<20} {'hint':<10} {'admin':<6} {'state':<8} created")
                for r in rows:
                    state = "active" if r["active"] else "revoked"
                    print(f"{r['id']:<13} {r['user']:<20} {r['hint']:<10} {str(r['admin']).lower():<6} "
                          f"{state:<8} {r['created_at']}")
        else:
            row = store.revoke(args.key_id)
            print(f"Revoked key {row.id} of '{row.user}'. 已吊销。")
        database.close()
    except AppError as exc:
        print(f"{exc.en}\n{exc.zh}", file=sys.stderr)
        return 2
    return 0
