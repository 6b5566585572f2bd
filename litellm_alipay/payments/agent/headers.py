"""The A2M (HTTP 402) headers as data: pure functions, no I/O, shared by the merchant and the emulator.

Facts (ALIPAY_AGENT_PAYMENTS.md A3): every header is UTF-8 JSON (non-ASCII left raw) in Base64URL
without padding; decoders accept both alphabets, with or without padding (the sandbox script sends
``Payment-Proof`` in standard Base64). ``Payment-Needed`` is ``{"protocol": …, "method": …}``; its
``seller_signature`` is RSA2 (SHA-256, PKCS#1 v1.5) with the app private key over exactly eight fields
— ``amount, currency, goods_name, out_trade_no, pay_before, resource_id, seller_id, service_id`` —
sorted, empty ones left out, joined ``k=v`` with ``&``, raw (no URL-encoding), in **standard** Base64.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ...errors import ProtocolError
from ...wire.signing import BEIJING, KeyText, PrivateKey, PublicKey, rsa_sign, rsa_verify

PAYMENT_NEEDED = "Payment-Needed"
PAYMENT_PROOF = "Payment-Proof"
PAYMENT_VALIDATION = "Payment-Validation"

#: the signed fields, in the order they are signed (byte order of their names)
SIGNED_FIELDS = ("amount", "currency", "goods_name", "out_trade_no", "pay_before", "resource_id", "seller_id",
                 "service_id")
PROTOCOL_FIELDS = ("out_trade_no", "amount", "currency", "resource_id", "pay_before", "seller_signature",
                   "seller_sign_type", "seller_unique_id")
METHOD_FIELDS = ("seller_name", "seller_id", "seller_app_id", "goods_name", "seller_unique_id_key", "service_id")
#: the sandbox's fixed service id; never valid in production
SANDBOX_SERVICE_ID = "api_mock_service_id"
#: a header longer than this is refused before it is decoded (real ones are well under 2 KiB)
MAX_HEADER_CHARS = 8192


def encode(value: Mapping[str, Any]) -> str:
    """JSON (non-ASCII raw, compact) in Base64URL without padding: what every header carries."""
    raw = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(header: str | None, name: str) -> dict[str, Any]:
    """A header's JSON object: either Base64 alphabet, padding optional, quotes around it tolerated.
    ``ProtocolError`` naming the header for anything else (never echoing the value)."""
    text = (header or "").strip().strip('"').strip()
    if not text:
        raise ProtocolError(f"{name} is empty")
    if len(text) > MAX_HEADER_CHARS:
        raise ProtocolError(f"{name} is longer than {MAX_HEADER_CHARS} characters")
    text = text.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError):
        raise ProtocolError(f"{name} is not Base64 JSON") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"{name} is not a JSON object")
    return value


def pay_before(now: datetime, seconds: float) -> str:
    """The payment deadline: ISO 8601, second precision, Beijing offset with a colon (A3.5)."""
    return (now.astimezone(BEIJING) + timedelta(seconds=seconds)).replace(microsecond=0).isoformat()


def parse_pay_before(text: str) -> datetime:
    """``pay_before`` as an aware datetime; ``ProtocolError`` without an offset."""
    try:
        when = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise ProtocolError("pay_before is not an ISO 8601 time") from None
    if when.tzinfo is None:
        raise ProtocolError("pay_before has no timezone offset")
    return when


def sign_content(fields: Mapping[str, Any]) -> str:
    """The seller signature's string: the eight fields, sorted, empty ones left out, raw ``k=v&…``."""
    parts = []
    for key in sorted(SIGNED_FIELDS):
        value = fields.get(key)
        if value is None or not str(value).strip():
            continue
        parts.append(f"{key}={value}")
    return "&".join(parts)


def signed_fields(bill: Mapping[str, Any]) -> dict[str, Any]:
    """The eight signed values of a decoded ``Payment-Needed`` (from both of its layers)."""
    protocol = bill.get("protocol") or {}
    method = bill.get("method") or {}
    if not isinstance(protocol, Mapping) or not isinstance(method, Mapping):
        raise ProtocolError("Payment-Needed needs the objects protocol and method")
    return {"amount": protocol.get("amount"), "currency": protocol.get("currency"),
            "goods_name": method.get("goods_name"), "out_trade_no": protocol.get("out_trade_no"),
            "pay_before": protocol.get("pay_before"), "resource_id": protocol.get("resource_id"),
            "seller_id": method.get("seller_id"), "service_id": method.get("service_id")}


@dataclass(frozen=True)
class Bill:
    """One order's bill, as signed and sent in ``Payment-Needed``."""

    out_trade_no: str
    amount: str
    resource_id: str
    pay_before: str
    goods_name: str
    service_id: str
    seller_id: str
    seller_app_id: str
    seller_name: str
    currency: str = "CNY"

    def fields(self) -> dict[str, str]:
        return {"amount": self.amount, "currency": self.currency, "goods_name": self.goods_name,
                "out_trade_no": self.out_trade_no, "pay_before": self.pay_before, "resource_id": self.resource_id,
                "seller_id": self.seller_id, "service_id": self.service_id}

    def header(self, private_key: KeyText | PrivateKey) -> str:
        """The ``Payment-Needed`` value, its ``seller_signature`` made with the app private key."""
        signature = rsa_sign(sign_content(self.fields()).encode("utf-8"), private_key, "RSA2")
        return encode({
            "protocol": {"out_trade_no": self.out_trade_no, "amount": self.amount, "currency": self.currency,
                         "resource_id": self.resource_id, "pay_before": self.pay_before,
                         "seller_signature": signature, "seller_sign_type": "RSA2",
                         "seller_unique_id": self.seller_id},
            "method": {"seller_name": self.seller_name, "seller_id": self.seller_id,
                       "seller_app_id": self.seller_app_id, "goods_name": self.goods_name,
                       "seller_unique_id_key": "seller_id", "service_id": self.service_id},
        })


def verify_bill(bill: Mapping[str, Any], public_key: KeyText | PublicKey) -> bool:
    """True when every field is present and ``seller_signature`` verifies with the app public key."""
    protocol = bill.get("protocol")
    method = bill.get("method")
    if not isinstance(protocol, Mapping) or not isinstance(method, Mapping):
        return False
    if any(not isinstance(protocol.get(k), str) or not protocol.get(k) for k in PROTOCOL_FIELDS):
        return False
    if any(not isinstance(method.get(k), str) or not method.get(k) for k in METHOD_FIELDS):
        return False
    if protocol.get("seller_sign_type") != "RSA2":
        return False
    content = sign_content(signed_fields(bill)).encode("utf-8")
    return rsa_verify(content, str(protocol["seller_signature"]), public_key, "RSA2")


@dataclass(frozen=True)
class Proof:
    """A decoded ``Payment-Proof``; ``payment_proof`` and ``client_session`` are the buyer's secrets."""

    trade_no: str
    payment_proof: str
    client_session: str | None = None

    def __repr__(self) -> str:  # the proof buys a service: never in a log line
        return f"Proof(trade_no={self.trade_no!r})"

    def header(self) -> str:
        method = {"client_session": self.client_session} if self.client_session is not None else {}
        return encode({"protocol": {"payment_proof": self.payment_proof, "trade_no": self.trade_no},
                       "method": method})


def parse_proof(header: str | None) -> Proof:
    """A ``Payment-Proof`` value; ``ProtocolError`` when it is not one (missing fields included)."""
    value = decode(header, PAYMENT_PROOF)
    protocol = value.get("protocol")
    method = value.get("method") or {}
    if not isinstance(protocol, Mapping) or not isinstance(method, Mapping):
        raise ProtocolError("Payment-Proof needs the object protocol")
    trade_no, proof = protocol.get("trade_no"), protocol.get("payment_proof")
    if not isinstance(trade_no, str) or not trade_no.strip() or len(trade_no) > 64:
        raise ProtocolError("Payment-Proof has no protocol.trade_no")
    if not isinstance(proof, str) or not proof.strip() or len(proof) > 1024:
        raise ProtocolError("Payment-Proof has no protocol.payment_proof")
    session = method.get("client_session")
    if session is not None and (not isinstance(session, str) or len(session) > 4096):
        raise ProtocolError("Payment-Proof method.client_session must be a string")
    return Proof(trade_no.strip(), proof, session)


def validation(trade_no: str, out_trade_no: str, resource_id: str) -> str:
    """The ``Payment-Validation`` value of a served request (A3.7)."""
    return encode({"trade_no": trade_no, "out_trade_no": out_trade_no, "validated": True,
                   "resource_id": resource_id})
