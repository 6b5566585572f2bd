"""``litellm-alipay emulator`` / ``python -m litellm_alipay.emulator``: build the config, serve it.

The socket is bound before anything is printed, so ``--port 0`` reports the real port; exactly one
``alipay emulator ready on http://HOST:PORT`` line is printed (and flushed) once uvicorn listens.
Settings printed by ``--demo`` are ``KEY=VALUE`` lines before it: paths and ids, never key text.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from ..serving.listen import bind
from .config import AppConfig, EmulatorConfig, check_admin_exposure, config_from_mapping, load_yaml, parse_app

READY = "alipay emulator ready on"
#: Trades ``--demo`` starts with: paid, partly refundable, unpaid (closable) and finished.
DEMO_TRADES = (
    {"out_trade_no": "demo-paid-1", "total_amount": "88.00", "subject": "demo order"},
    {"out_trade_no": "demo-paid-2", "total_amount": "12.50", "subject": "demo order"},
    {"out_trade_no": "demo-unpaid-1", "total_amount": "30.00", "trade_status": "WAIT_BUYER_PAY"},
    {"out_trade_no": "demo-finished-1", "total_amount": "5.00", "trade_status": "TRADE_FINISHED"},
)
#: environment variable holding the admin token (keeps it off the command line, which ``ps`` shows)
ADMIN_TOKEN_ENV = "ALIPAY_EMULATOR_ADMIN_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (0 = a free port; default 0)")
    parser.add_argument("--config", help="YAML file: apps, quotas, faults, model limits, oauth")
    parser.add_argument("--app-id", help="register one app with this id")
    parser.add_argument("--app-public-key", help="file with that app's public key (PEM or bare base64)")
    parser.add_argument("--sign-type", default="RSA2", choices=["RSA2", "RSA"], help="that app's sign type")
    parser.add_argument("--alipay-private-key", help="file with the emulator's 'Alipay' private key")
    parser.add_argument("--demo", action="store_true", help="generate throwaway keys and demo apps")
    parser.add_argument("--keys-dir", help="with --demo: directory to write the keys to")
    parser.add_argument("--env-file", help="with --demo: write the client settings as KEY=VALUE lines")
    parser.add_argument("--seed", type=int, default=None, help="seed of the fault RNG")
    parser.add_argument("--admin-token", default=os.environ.get(ADMIN_TOKEN_ENV) or None,
                        help=f"bearer token for /_admin/* (default ${ADMIN_TOKEN_ENV}); required with a "
                             "non-loopback --host")


def build_config(args: argparse.Namespace) -> tuple[EmulatorConfig, dict[str, str]]:
    """The config from flags (and ``--demo``), then the YAML on top; plus the demo settings."""
    settings: dict[str, str] = {}
    base: EmulatorConfig | None = None
    if args.demo:
        from ..wire.signing import load_private_key
        from .demo_keys import DEMO_APP_ID, DEMO_CERT_APP_ID, write_demo_keys

        keys = write_demo_keys(args.keys_dir or tempfile.mkdtemp(prefix="alipay-emulator-"))
        base = EmulatorConfig(alipay_private_key=load_private_key(keys.alipay_private_key.read_text()))
        base.apps[DEMO_APP_ID] = parse_app(
            {"app_id": DEMO_APP_ID, "app_public_key": str(keys.app_public_key)}, "demo"
        )
        base.apps[DEMO_CERT_APP_ID] = parse_app(
            {"app_id": DEMO_CERT_APP_ID, "app_cert": str(keys.app_cert)}, "demo"
        )
        base = config_from_mapping(
            {"alipay_cert": str(keys.alipay_cert), "alipay_root_cert": str(keys.alipay_root_cert)}, base=base
        )
        base.seed_trades = [(DEMO_APP_ID, trade) for trade in DEMO_TRADES]
        settings = keys.settings("")
    data: dict[str, Any] = dict(load_yaml(args.config)) if args.config else {}
    if args.alipay_private_key:
        data["alipay_private_key"] = args.alipay_private_key
    cfg = config_from_mapping(data, base=base)
    if args.app_id or args.app_public_key:
        if not (args.app_id and args.app_public_key):
            raise ConfigurationError("--app-public-key" if args.app_id else "--app-id",
                                     "is required with the other")
        app: AppConfig = parse_app(
            {"app_id": args.app_id, "app_public_key": args.app_public_key, "sign_type": args.sign_type},
            "--app-id",
        )
        cfg.apps[app.app_id] = app
    if args.host is not None:
        cfg.host = args.host
    if args.port is not None:
        cfg.port = args.port
    if args.seed is not None:
        cfg.seed = args.seed
    if args.admin_token:
        cfg.admin_token = args.admin_token
    if not cfg.apps:
        raise ConfigurationError("apps", "no app is registered (use --app-id, --config or --demo)")
    check_admin_exposure(cfg)
    return cfg, settings


def serve(config: EmulatorConfig, settings: dict[str, str] | None = None,
          env_file: str | None = None) -> None:
    """Bind, print the settings and the ready line, serve until interrupted."""
    import uvicorn

    from .app import create_app

    sock = bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    base_url = f"http://{shown}:{port}"
    lines = []
    if settings:
        settings = {**settings, "ALIPAY_GATEWAY_URL": f"{base_url}/gateway.do", "ALIPAY_EMULATOR_URL": base_url,
                    "ANT_LING_API_BASE": f"{base_url}/ant-ling/v1"}
        lines = [f"{k}={v}" for k, v in settings.items()]
        if env_file:  # the emulator's public demo key goes to the file only, never to stdout
            from .ant_ling import DEMO_API_KEY

            Path(env_file).write_text("".join(line + "\n" for line in [*lines, f"ANT_LING_API_KEY={DEMO_API_KEY}"]))
    uv_config = uvicorn.Config(
        create_app(config), log_level="warning", access_log=False, lifespan="off", http="auto", loop="auto",
        server_header=False, timeout_keep_alive=30,
    )

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            for line in lines:
                print(line)
            print(f"{READY} {base_url}", flush=True)

    _Server(uv_config).run(sockets=[sock])


def run(args: argparse.Namespace) -> int:
    try:
        config, settings = build_config(args)
    except ConfigurationError as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    if args.env_file and not settings:
        print("emulator: --env-file needs --demo", file=sys.stderr)
        return 2
    try:
        serve(config, settings, args.env_file)
    except OSError as exc:
        print(f"emulator: cannot listen on {config.host}:{config.port}: {exc.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def add_parser(subparsers: Any) -> None:
    """Register ``litellm-alipay emulator``."""
    parser = subparsers.add_parser("emulator", help="run the local Alipay AI gateway emulator")
    add_arguments(parser)
    parser.set_defaults(func=run)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m litellm_alipay.emulator", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
