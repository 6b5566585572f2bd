"""The payment methods' wire facts shared by the toolkit and the emulator (pure: no I/O).

Method names, the 2-decimal amount format, the notification's string-to-sign (which, unlike a
request's, leaves out ``sign_type`` as well as ``sign``) and the browser-redirect forms of page and
WAP payments. The emulator imports this module; it never re-implements any of it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from ..errors import ConfigurationError
from ..wire.form import form_encode
from ..wire.signing import KeyText, PrivateKey, PublicKey, build_sign_content, rsa_sign, rsa_verify

QUERY = "alipay.trade.query"
REFUND = "alipay.trade.refund"
REFUND_QUERY = "alipay.trade.fastpay.refund.query"
CLOSE = "alipay.trade.close"
CANCEL = "alipay.trade.cancel"
PRECREATE = "alipay.trade.precreate"
PAGE_PAY = "alipay.trade.page.pay"
WAP_PAY = "alipay.trade.wap.pay"
BILL_URL = "alipay.data.dataservice.bill.downloadurl.query"

#: Methods the gateway answers (page and WAP payments are browser redirects, never server calls).
SERVER_METHODS = frozenset({QUERY, REFUND, REFUND_QUERY, CLOSE, CANCEL, PRECREATE, BILL_URL})
PRODUCT_CODES = {PAGE_PAY: "FAST_INSTANT_TRADE_PAY", WAP_PAY: "QUICK_WAP_WAY", PRECREATE: "FACE_TO_FACE_PAYMENT"}

TRADE_STATUSES = ("WAIT_BUYER_PAY", "TRADE_SUCCESS", "TRADE_CLOSED", "TRADE_FINISHED")
MAX_AMOUNT = Decimal("100000000.00")
_CENT = Decimal("0.01")


def amount(value: Any, field: str = "amount") -> str:
    """``value`` (a string or a number) as Alipay's yuan string with exactly 2 decimals.

    More than 2 decimals, zero, negative or above 100,000,000 is refused rather than rounded: a
    silently rounded refund is a different refund.
    """
    if isinstance(value, bool):
        raise ConfigurationError(field, "must be an amount in yuan such as \"12.50\", got a boolean")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ConfigurationError(field, f"must be an amount in yuan such as \"12.50\", got {value!r}") from None
    if not number.is_finite() or number < _CENT or number > MAX_AMOUNT:
        raise ConfigurationError(field, f"must be between 0.01 and 100000000.00 yuan, got {value!r}")
    if number != number.quantize(_CENT, rounding=ROUND_HALF_UP):
        raise ConfigurationError(field, f"must have at most 2 decimals, got {value!r}")
    return str(number.quantize(_CENT))


def cents(text: str | None) -> int:
    """An amount string (``"12.50"``) in integer cents; empty or missing is 0."""
    return int((Decimal(text or "0") * 100).to_integral_value())


def yuan(value: int) -> str:
    """Integer cents back to the 2-decimal yuan string."""
    return str((Decimal(value) / 100).quantize(_CENT))


# ------------------------------------------------------------------------------ notifications
def notify_sign_content(params: Mapping[str, Any]) -> str:
    """An async notification's string-to-sign: sorted ``k=v`` without ``sign`` and ``sign_type``."""
    return build_sign_content({k: v for k, v in params.items() if k not in ("sign", "sign_type")})


def sign_notify(params: Mapping[str, str], key: KeyText | PrivateKey, sign_type: str = "RSA2") -> dict[str, str]:
    """``params`` with ``sign_type`` and ``sign`` added, as Alipay POSTs them to ``notify_url``."""
    signed = {**params, "sign_type": sign_type}
    charset = str(params.get("charset") or "utf-8")
    signed["sign"] = rsa_sign(notify_sign_content(signed).encode(charset), key, sign_type)
    return signed


def verify_notify(params: Mapping[str, str], public_key: KeyText | PublicKey) -> bool:
    """True when the notification's ``sign`` verifies under its own ``sign_type`` (RSA2 or RSA)."""
    sign_type = params.get("sign_type") or "RSA2"
    signature = params.get("sign")
    if not signature or sign_type not in ("RSA2", "RSA"):
        return False
    charset = str(params.get("charset") or "utf-8")
    try:
        data = notify_sign_content(params).encode(charset)
    except (LookupError, UnicodeEncodeError):
        return False
    return rsa_verify(data, signature, public_key, sign_type)


# ------------------------------------------------------------------------------ page / WAP pay
def redirect_url(gateway_url: str, signed: Mapping[str, str], charset: str = "utf-8") -> str:
    """The signed GET URL that opens the cashier (every parameter, ``biz_content`` included)."""
    return f"{gateway_url}?{form_encode(signed, charset)}"


def redirect_form(gateway_url: str, signed: Mapping[str, str], charset: str = "utf-8") -> str:
    """The auto-submitting HTML form the official SDK's ``page_execute`` builds for POST."""
    common = {k: v for k, v in signed.items() if k != "biz_content"}
    action = html.escape(f"{gateway_url}?{form_encode(common, charset)}", quote=True)
    biz = html.escape(signed.get("biz_content", ""), quote=True)
    return (
        f'<form name="punchout_form" method="post" action="{action}">\n'
        f'<input type="hidden" name="biz_content" value="{biz}">\n'
        '<input type="submit" value="Pay" style="display:none">\n</form>\n'
        "<script>document.forms[0].submit();</script>"
    )
