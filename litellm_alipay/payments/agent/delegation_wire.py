"""Delegation Pay's wire facts, shared by the client side and the emulator (pure: no I/O).

Method names, the mandate's states, the fixed product values, the id and amount rules of each field,
the validity window (dates at apply, Beijing timestamps at query; the end is the reported timestamp,
``yyyy-MM-dd 00:00:00`` of the end date — the stricter reading of an undocumented point) and the
signed apply string (``orderStr``), built and read here so the emulator never re-implements it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

from ...errors import ConfigurationError
from ...wire import protocol
from ...wire.form import form_encode
from ...wire.signing import BEIJING, KeyText, PrivateKey
from .. import wire

APPLY = "alipay.user.agreement.delegation.apply"
QUERY = "alipay.user.agreement.delegation.query"
PREPAY = "alipay.trade.order.prepay"
PAY = "alipay.trade.agent.delegation.pay"
CANCEL = "alipay.user.agreement.delegation.cancel"
#: the mandate tools -> the method behind each
MANDATE_ACTIONS = {"propose_mandate": APPLY, "mandate_status": QUERY, "pay_under_mandate": PAY,
                   "cancel_mandate": CANCEL}
#: the methods the gateway answers (apply is only signed: the Alipay app carries it to Alipay)
SERVER_METHODS = frozenset({QUERY, PREPAY, PAY, CANCEL})

PERSONAL_PRODUCT_CODE = "UAM_AGENT_AUTH_P"
CHANNEL = "ALIPAYAPP"
PRODUCT_CODE = "QUICK_MSECURITY_PAY"
PAYMENT_TYPE = "agent_pay"
PREPAY_TTL = 2 * 3600  # seconds a prepay_id may be paid

SIGNING, NORMAL, FINISHED, CANCELLED, EXPIRED, TERMINATE, INVALID = (
    "SIGNING", "NORMAL", "FINISHED", "CANCELLED", "EXPIRED", "TERMINATE", "INVALID")
#: states no payment ever leaves (only a query is allowed)
TERMINAL = frozenset({FINISHED, CANCELLED, EXPIRED, TERMINATE, INVALID})

#: notify_type of the application-gateway notifications
SIGN_NOTIFY, UNSIGN_NOTIFY, STATUS_NOTIFY = "dut_user_sign", "dut_user_unsign", "dut_delegation_status_change"

_EXTERNAL_NO = re.compile(r"^[A-Za-z0-9]{1,32}$")
_OUT_TRADE_NO = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_SUBJECT_FORBIDDEN = frozenset("/=&")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def external_no(value: Any, field: str) -> str:
    """A merchant number of apply/query (letters and digits, 1-32)."""
    if not isinstance(value, str) or not _EXTERNAL_NO.match(value):
        raise ConfigurationError(field, "must be 1-32 letters and digits")
    return value


def out_trade_no(value: Any) -> str:
    if not isinstance(value, str) or not _OUT_TRADE_NO.match(value):
        raise ConfigurationError("out_trade_no", "must be 1-64 letters, digits and underscores")
    return value


def subject(value: Any) -> str:
    text = str(value or "").strip()
    if not text or len(text) > 256 or _SUBJECT_FORBIDDEN & set(text):
        raise ConfigurationError("subject", "must be 1-256 characters without '/', '=' or '&'")
    return text


def times(value: Any, field: str = "times_limit") -> int | None:
    """An optional positive count (a string on the wire)."""
    if value in (None, ""):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigurationError(field, f"must be a whole number, got {value!r}") from None
    if number < 1 or number > 100000:
        raise ConfigurationError(field, f"must be between 1 and 100000, got {value!r}")
    return number


def day(value: Any, field: str) -> date:
    try:
        return datetime.strptime(str(value), "%Y-%m-%d").date()
    except ValueError:
        raise ConfigurationError(field, f"must be a date yyyy-MM-dd, got {value!r}") from None


def window_start(start: date) -> datetime:
    """The first moment of validity: 00:00:00 Beijing time of the start date."""
    return datetime(start.year, start.month, start.day, tzinfo=BEIJING)


def window_end(end: date) -> datetime:
    """The moment validity ends: 00:00:00 Beijing time of the end date (as query reports it)."""
    return datetime(end.year, end.month, end.day, tzinfo=BEIJING)


def stamp(moment: datetime) -> str:
    return moment.astimezone(BEIJING).strftime(TIME_FORMAT)


def parse_stamp(text: Any) -> datetime | None:
    """A query's ``yyyy-MM-dd HH:mm:ss`` (or a bare date) as a Beijing time; None when unreadable."""
    for pattern in (TIME_FORMAT, "%Y-%m-%d"):
        try:
            return datetime.strptime(str(text), pattern).replace(tzinfo=BEIJING)
        except ValueError:
            continue
    return None


def validity(days: int, today: date) -> tuple[date, date]:
    """A window of ``days`` whole days from today: ``(today, today + days)``."""
    if not 1 <= days <= 365:
        raise ConfigurationError("valid_days", f"must be between 1 and 365, got {days}")
    return today, today + timedelta(days=days)


def delegation_params(*, external_delegation_id: str, delegation_desc: str, max_total_amount: Any,
                      validity_start: date, validity_end: date, times_limit: int | None = None,
                      delegation_tag: str | None = None) -> dict[str, str]:
    """``DelegationParams`` as apply sends it (every value a string)."""
    desc = str(delegation_desc or "").strip()
    if not desc:
        raise ConfigurationError("delegation_desc", "is required: what the user delegates, in their words")
    if validity_end <= validity_start:
        raise ConfigurationError("validity_end_time", "must be after validity_start_time")
    params = {"external_delegation_id": external_no(external_delegation_id, "external_delegation_id"),
              "delegation_desc": desc[:256], "max_total_amount": wire.amount(max_total_amount, "max_total_amount"),
              "validity_start_time": validity_start.isoformat(), "validity_end_time": validity_end.isoformat()}
    if times_limit is not None:
        params["times_limit"] = str(times_limit)
    if delegation_tag:
        params["delegation_tag"] = str(delegation_tag)[:64]
    return params


def apply_biz(*, agent_id: str, external_agreement_no: str, delegation: Mapping[str, str],
              conversation: list[Mapping[str, str]] | None = None) -> dict[str, Any]:
    """The apply request's ``biz_content``; an empty conversation history is sent as ``[]`` (0-10 items)."""
    history = list(conversation or [])[-10:]
    return {"agent_id": str(agent_id)[:32], "external_agreement_no": external_no(external_agreement_no,
                                                                                 "external_agreement_no"),
            "personal_product_code": PERSONAL_PRODUCT_CODE, "delegation_params": dict(delegation),
            "access_params": {"channel": CHANNEL}, "conversation_history": history}


def order_str(app_id: str, biz: Mapping[str, Any], key: KeyText | PrivateKey, *, charset: str = "utf-8",
              sign_type: str = "RSA2", notify_url: str | None = None, app_auth_token: str | None = None,
              app_cert_sn: str | None = None, alipay_root_cert_sn: str | None = None,
              timestamp: str | None = None) -> str:
    """The signed apply string the client app hands to the Alipay app (the SDK's ``sdkExecute``): every
    parameter, ``sign`` included, form-encoded; no gateway round trip."""
    params = protocol.common_params(app_id, APPLY, json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
                                    charset=charset, sign_type=sign_type, timestamp=timestamp,
                                    notify_url=notify_url, app_auth_token=app_auth_token,
                                    app_cert_sn=app_cert_sn, alipay_root_cert_sn=alipay_root_cert_sn)
    return form_encode(protocol.sign_request(params, key), charset)


def read_order_str(text: str) -> dict[str, str]:
    """An apply string's parameters (``+`` or ``%20`` for a space, as Java's and Python's encoders differ)."""
    if not isinstance(text, str) or len(text) > 16384:
        raise ConfigurationError("order_str", "must be the signed apply string (at most 16384 characters)")
    pairs = parse_qsl(text, keep_blank_values=True, encoding="latin-1")
    charset = dict(pairs).get("charset") or "utf-8"
    return dict(parse_qsl(text, keep_blank_values=True, encoding=charset))


def cents_of(text: Any) -> int:
    return wire.cents(str(text)) if text not in (None, "") else 0
