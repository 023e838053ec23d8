"""The ``bastion`` command: serve, reload, config check, db, version."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence

from bastion import __version__
from bastion.core.errors import ConfigError
from bastion.interfaces.cli.reload import PIDFILE_ENV


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0].startswith("-") and args_list[0] not in ("-h", "--help"):
        args_list.insert(0, "serve")  # `bastion --config f.yaml`, as LiteLLM users type it
    parser = _parser()
    args = parser.parse_args(args_list)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    if args.command == "version":
        print(f"bastion {__version__}")
        return 0
    if args.command == "config":
        return _config_check(args.file)
    if args.command == "db":
        from bastion.interfaces.cli.db import run_db_command

        return run_db_command(args)
    if args.command == "reload":
        from bastion.interfaces.cli.reload import run_reload

        return run_reload(args)
    return _serve(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bastion", description="Bastion LLM gateway")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config",
        "-c",
        default=os.environ.get("BASTION_CONFIG") or os.environ.get("CONFIG_FILE_PATH"),
        help="LiteLLM-format proxy config (default: the embedded fake-model config)",
    )
    serve.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve.add_argument("--port", "-p", type=int, default=int(os.environ.get("PORT", "4000")))
    serve.add_argument(
        "--workers",
        "--num_workers",
        "--num-workers",
        dest="workers",
        type=int,
        default=int(os.environ.get("NUM_WORKERS", "1")),
    )
    serve.add_argument(
        "--log-level",
        default=os.environ.get("BASTION_LOG_LEVEL", "info"),
        choices=["critical", "error", "warning", "info", "debug"],
    )
    serve.add_argument("--access-log", action="store_true", help="log every request")
    serve.add_argument(
        "--graceful-timeout",
        type=float,
        default=300.0,
        help="seconds to let in-flight requests finish after SIGTERM",
    )
    serve.add_argument("--keep-alive-timeout", type=int, default=65)
    serve.add_argument(
        "--pidfile",
        default=os.environ.get(PIDFILE_ENV),
        help=f"write the gateway's process id here, for `bastion reload` (or ${PIDFILE_ENV})",
    )
    check = sub.add_parser("config", help="configuration tools")
    check_sub = check.add_subparsers(dest="config_command", required=True)
    check_cmd = check_sub.add_parser("check", help="validate a config and print what it serves")
    check_cmd.add_argument("file")
    sub.add_parser("version", help="print the version")
    from bastion.interfaces.cli.db import add_db_parser
    from bastion.interfaces.cli.reload import add_reload_parser

    add_db_parser(sub)
    add_reload_parser(sub)
    return parser


def _config_check(path: str) -> int:
    from bastion.app import build_runtime
    from bastion.config.loader import load_config_file

    try:
        loaded = load_config_file(path)
        runtime = build_runtime(loaded)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(f"{path}: OK")
    groups: dict[str, list[str]] = {}
    for d in runtime.deployments:
        note = f"  [{d.missing_credential}]" if d.missing_credential else ""
        groups.setdefault(d.model_name, []).append(
            f"{d.provider_name}/{d.upstream_model} at {d.api_base or '-'} (id {d.id[:12]}){note}"
        )
    print(f"model groups ({len(groups)}):")
    for name, rows in groups.items():
        print(f"  {name}")
        for row in rows:
            print(f"    - {row}")
    for alias, target in runtime.table.aliases.items():
        print(f"alias: {alias} -> {target}")
    policy = runtime.router.policy
    cooldowns = runtime.router.cooldowns
    print(
        f"routing: simple-shuffle, num_retries {policy.num_retries}, "
        f"allowed_fails {cooldowns.allowed_fails}, cooldown_time {cooldowns.cooldown_time:g}s"
        + (" (cooldowns disabled)" if cooldowns.disabled else "")
    )
    for group, targets in (policy.fallbacks or {}).items():
        print(f"fallbacks: {group} -> {', '.join(targets)}")
    if policy.default_fallbacks:
        print(f"default fallbacks: {', '.join(policy.default_fallbacks)}")
    print(
        "auth: master key set"
        if not runtime.auth.open_access
        else "auth: NO MASTER KEY - the gateway would be open"
    )
    for warning in loaded.warnings:
        print(f"warning: {warning}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from bastion.app import CONFIG_ENV, LOG_LEVEL_ENV, configure_logging, create_app, load_config

    os.environ[LOG_LEVEL_ENV] = args.log_level
    configure_logging()
    config_path = os.path.abspath(args.config) if args.config else None
    try:
        loaded = load_config(config_path)
        # Built in the parent even when workers build their own: a config that cannot
        # work stops here with one clear message, not with each worker's traceback.
        app = create_app(loaded)
    except ConfigError as exc:
        print(f"bastion: {exc}", file=sys.stderr)
        return 1
    for warning in loaded.warnings:
        logging.getLogger("bastion.config").warning("%s", warning)
    if not _migrate(loaded.config.general_settings.database_url):
        return 1

    import uvicorn

    options = {
        "host": args.host,
        "port": args.port,
        "loop": "uvloop",
        "http": "httptools",
        "lifespan": "on",
        "access_log": args.access_log,
        "log_level": args.log_level,
        "server_header": False,
        "timeout_graceful_shutdown": args.graceful_timeout,
        "timeout_keep_alive": args.keep_alive_timeout,
        "backlog": 4096,
        "log_config": None,
    }
    from bastion.interfaces.cli.reload import pidfile
    from bastion.interfaces.cli.supervisor import run_workers

    with pidfile(args.pidfile):
        if args.workers <= 1:
            # After a graceful shutdown uvicorn restores this handler and re-raises the
            # SIGTERM it caught; without it the process would die "killed by SIGTERM"
            # (status 143) instead of exiting 0 as it does with --workers N.
            signal.signal(signal.SIGTERM, _exit_cleanly)
            uvicorn.run(app, **options)  # type: ignore[arg-type,unused-ignore]
        else:
            if config_path:
                os.environ[CONFIG_ENV] = config_path
            # uvicorn's supervisor, but SIGHUP reloads every worker in place (supervisor.py).
            run_workers("bastion.app:create_app_from_env", args.workers, options)
    return 0


def _migrate(configured_url: str | None) -> bool:
    """Bring the database schema up to date once, in the parent, before any worker."""
    from bastion.services.migration_process import MigrationFailedError, migrate_outside
    from bastion.services.tenancy import database_target
    from bastion.storage.urls import DatabaseURLError

    try:
        target = database_target(configured_url)
    except DatabaseURLError as exc:
        print(f"bastion: {exc}", file=sys.stderr)
        return False
    try:
        revision = migrate_outside(target)
    except Exception as exc:
        reason = (
            str(exc) if isinstance(exc, MigrationFailedError) else f"{type(exc).__name__}: {exc}"
        )
        print(
            f"bastion: cannot migrate the database at {target.redacted()}: {reason}",
            file=sys.stderr,
        )
        return False
    logging.getLogger("bastion.storage").info(
        "database %s at schema revision %s", target.redacted(), revision
    )
    return True


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)
