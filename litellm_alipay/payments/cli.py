"""``litellm-alipay audit`` (a day's payment actions and totals) and ``litellm-alipay notify`` (the
notification receiver as a small ASGI server). Settings come from the ``ALIPAY_*`` environment."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

AUDIT_ENV = "ALIPAY_AUDIT_LOG"
NOTIFY_READY = "alipay notify receiver ready on"


def _audit(args: argparse.Namespace) -> int:
    from .audit import print_day

    path = args.file or os.environ.get(AUDIT_ENV)
    if not path:
        print(f"audit: give --file or set {AUDIT_ENV}", file=sys.stderr)
        return 2
    return print_day(path, args.date)


def _notify(args: argparse.Namespace) -> int:
    import uvicorn

    from ..errors import ConfigurationError
    from ..serving.listen import bind
    from ..settings import build_settings
    from .audit import AuditLog
    from .notify import NotifySettings, NotifyVerifier, notify_app
    from .policy import PaymentPolicy
    from .toolkit import PaymentToolkit

    try:
        audit_path = args.audit_log or os.environ.get(AUDIT_ENV)
        toolkit = PaymentToolkit(build_settings({}), PaymentPolicy.from_env(),  # the ledger: ids shared, kept
                                 audit=AuditLog(audit_path) if audit_path else None)
        receiver = NotifySettings.from_env()
    except ConfigurationError as exc:
        print(f"notify: {exc}", file=sys.stderr)
        return 2
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    verifier = NotifyVerifier.for_toolkit(toolkit, seller_id=receiver.seller_id)
    config = uvicorn.Config(notify_app(verifier, max_body_bytes=receiver.max_body_bytes), log_level="warning",
                            access_log=False, lifespan="on", server_header=False)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            print(f"{NOTIFY_READY} http://{host}:{port}", flush=True)

    _Server(config).run(sockets=[sock])
    return 0


def add_parsers(subparsers: Any) -> None:
    """Register ``audit`` and ``notify`` on the ``litellm-alipay`` command."""
    audit = subparsers.add_parser("audit", help="print a day's payment actions and totals from the audit trail")
    audit.add_argument("--file", help=f"the audit trail (default: ${AUDIT_ENV})")
    audit.add_argument("--date", help="Beijing day, yyyy-MM-dd (default: today)")
    audit.set_defaults(func=_audit)
    notify = subparsers.add_parser("notify", help="receive Alipay's payment notifications (verified, audited)")
    notify.add_argument("--host", default="127.0.0.1")
    notify.add_argument("--port", type=int, default=8090, help="0 = a free port")
    notify.add_argument("--audit-log", help=f"append notifications to this trail (default: ${AUDIT_ENV})")
    notify.set_defaults(func=_notify)
