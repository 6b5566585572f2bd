"""``litellm-alipay check``: is this deployment's configuration going to work, and for how long?

Why a command of its own: a wrong key pair, a certificate that expired over the weekend or an Alipay
public key pasted in place of the app's are found today by the first failing customer request. This
check finds them before (and, run from cron, keeps finding them): settings and key formats through
``build_settings``; the app key pair; certificate chains and expiry dates; the extra keys kept for
monthly rotation; and a signed ``alipay.cloud.ai.embed`` call that proves the gateway accepts our
signature and we accept its.

Output is one line per check (``OK``/``WARN``/``FAIL``); the exit status is 1 when anything failed.
Nothing printed or posted contains key material, signatures, tokens or the webhook URL (Slack webhook
URLs are credentials): keys are identified by a SHA-256 fingerprint of the *public* half.

Alert body (``--webhook``): one JSON object both receivers accept, so one URL setting serves either::

    {"text": "<summary>",                       # Slack incoming webhook: the message
     "routing_key": "<key>",                    # PagerDuty Events v2 (only when --routing-key is given)
     "event_action": "trigger", "dedup_key": "litellm-alipay-check:<app_id>",
     "payload": {"summary": "<summary>", "severity": "error", "source": "<host>",
                 "component": "litellm-alipay", "group": "<app_id>",
                 "custom_details": {"checks": [{"status", "name", "detail"}, ...]}}}

Slack ignores the fields it does not know; PagerDuty ignores ``text``. ``summary`` is cut to PagerDuty's
1,024 characters. The dedup key makes repeated cron runs update one incident instead of opening many.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ..errors import ConfigurationError
from ..settings import ENV, AlipaySettings, build_settings, raw_value, read_key_text
from ..wire.signing import PrivateKey, PublicKey, check_key_pair, load_private_key, load_public_key
from ..wire.signing._certs import PEM_CERT
from .check_result import CheckResult, error_text, fail, failed, ok, warn

WARN_DAYS = 30
DEFAULT_MODEL = "ant-fin-embed"
ROUTING_KEY_ENV = "ALIPAY_ALERT_ROUTING_KEY"
_SUMMARY_MAX = 1024


@dataclass(frozen=True)
class CheckOptions:
    """What to check beyond the deployment settings themselves."""

    app_public_key: str | None = None
    extra_keys: tuple[str, ...] = ()
    call: bool = True
    model: str = DEFAULT_MODEL
    warn_days: int = WARN_DAYS
    timeout: float = 10.0
    env: Mapping[str, str] | None = field(default=None, repr=False)


# ------------------------------------------------------------------------------------------ keys
def fingerprint(key: PublicKey | PrivateKey) -> str:
    """``sha256:`` + 16 hex digits of the public half's DER: names a key without revealing it."""
    public = key.public_key() if isinstance(key, rsa.RSAPrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def _describe(key: PublicKey | PrivateKey) -> str:
    return f"RSA-{key.key_size} {fingerprint(key)}"


def key_pair_check(private_key: PrivateKey, public_key: PublicKey, public_name: str) -> CheckResult:
    """The app's private key and the public key uploaded to Alipay (or in the app cert) must pair."""
    name = f"app_private_key / {public_name}"
    if check_key_pair(private_key, public_key):
        return ok(name, f"pair ({_describe(public_key)})")
    return fail(name, f"not a pair: {public_name} is {fingerprint(public_key)}, the private key's public half "
                      f"is {fingerprint(private_key)}; upload this private key's public key")


def not_own_key_check(private_key: PrivateKey, alipay_key: PublicKey, name: str) -> CheckResult:
    """Alipay's public key pasted as the app's own (or vice versa) is the commonest console mix-up."""
    if check_key_pair(private_key, alipay_key):
        return fail(name, "is the app's own public key; configure Alipay's public key (支付宝公钥) "
                          "from the console instead")
    return ok(name, f"{_describe(alipay_key)}, not the app's own key (the gateway call tests it is Alipay's)")


# ---------------------------------------------------------------------------------- certificates
def pem_certificates(text: str) -> tuple[list[x509.Certificate], int]:
    """``(certificates, how many were skipped)``: each PEM block on its own, because Alipay's root bundle
    holds SM2/ECC certificates ``cryptography`` cannot parse, and those are not ours to check."""
    certs: list[x509.Certificate] = []
    skipped = 0
    for block in (m.group(0) for m in PEM_CERT.finditer(text)):
        try:
            certs.append(x509.load_pem_x509_certificate(block.encode("ascii", "ignore")))
        except ValueError:
            skipped += 1
    return certs, skipped


def _cn(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def expiry_check(name: str, cert: x509.Certificate, now: datetime, warn_days: int = WARN_DAYS) -> CheckResult:
    """FAIL when expired or not yet valid, WARN within ``warn_days`` of the end: time to renew."""
    after, before = cert.not_valid_after_utc, cert.not_valid_before_utc
    if now < before:
        return fail(name, f"not valid before {before:%Y-%m-%d %H:%M} UTC")
    if now >= after:
        return fail(name, f"expired on {after:%Y-%m-%d} ({(now - after).days} days ago); renew it in the console")
    left = after - now
    if left <= timedelta(days=warn_days):
        return warn(name, f"expires on {after:%Y-%m-%d}, in {left.days} days; renew it now")
    return ok(name, f"valid until {after:%Y-%m-%d} ({left.days} days)")


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> str | None:
    """``None`` when ``issuer`` issued ``cert`` (name and, for RSA, signature), else why not."""
    if cert.issuer != issuer.subject:
        return "issuer name differs"
    try:
        cert.verify_directly_issued_by(issuer)
    except InvalidSignature:
        return "signature does not verify"
    except (TypeError, ValueError):
        # Non-RSA issuer keys (SM2, ECC): only RSA signatures are verified here; the name matched.
        if isinstance(_public_key(issuer), rsa.RSAPublicKey):
            return "signature algorithm not supported"
    return None


def _public_key(cert: x509.Certificate) -> Any:
    """The certificate's key, or ``None`` for curves ``cryptography`` does not know (Alipay's SM2)."""
    try:
        return cert.public_key()
    except (ValueError, TypeError):
        return None


def chain_check(name: str, chain: Sequence[x509.Certificate], roots: Sequence[x509.Certificate]
                ) -> tuple[CheckResult, list[x509.Certificate]]:
    """Walk from the leaf (``chain[0]``) through intermediates in the same file to a root of the bundle.

    Returns the result and the certificates on the path (for their expiry checks). Intermediates must
    follow the leaf in its file, as Alipay ships ``alipayCertPublicKey_RSA2.crt``; they must not be added
    to the root bundle, whose every RSA certificate goes into ``alipay_root_cert_sn``.
    """
    current, path = chain[0], [chain[0]]
    intermediates = list(chain[1:])
    for _ in range(len(chain) + 1):
        named = [c for c in roots if c.subject == current.issuer]
        reasons = []
        for root in named:
            why = _issued_by(current, root)
            if why is None:
                path.append(root)
                via = f" via {len(path) - 2} intermediate(s)" if len(path) > 2 else ""
                return ok(name, f"issued by {_cn(root.subject)} from the root bundle{via}"), path
            reasons.append(why)
        step = next((c for c in intermediates if c.subject == current.issuer
                     and _issued_by(current, c) is None), None)
        if step is None:
            if reasons:
                return fail(name, f"{_cn(current.subject)}: {reasons[0]} against root "
                                  f"{_cn(current.issuer)}"), path
            return fail(name, f"issuer {_cn(current.issuer)} of {_cn(current.subject)} is not in the root "
                              "bundle (nor an intermediate in the same file)"), path
        intermediates.remove(step)
        path.append(step)
        current = step
    return fail(name, "certificate chain loops"), path


def certificate_checks(app_cert: str | None, alipay_cert: str | None, root_bundle: str | None,
                       now: datetime, warn_days: int = WARN_DAYS) -> list[CheckResult]:
    """Chains of the app and Alipay certificates to the root bundle, and the expiry of every
    certificate on those paths (each checked once)."""
    results: list[CheckResult] = []
    roots: list[x509.Certificate] = []
    if root_bundle is not None:
        roots, skipped = pem_certificates(root_bundle)
        if not roots:
            results.append(fail("alipay_root_cert", "holds no certificate this check can read"))
        else:
            note = f" ({skipped} unreadable skipped)" if skipped else ""
            results.append(ok("alipay_root_cert", f"{len(roots)} certificate(s){note}"))
    seen: set[bytes] = set()
    for setting, text in (("app_cert", app_cert), ("alipay_public_cert", alipay_cert)):
        if text is None:
            continue
        chain, _ = pem_certificates(text)
        if not chain:
            results.append(fail(setting, "holds no readable X.509 certificate"))
            continue
        result, path = chain_check(f"{setting} chain", chain, roots)
        results.append(result)
        for position, cert in enumerate(path):
            fp = cert.fingerprint(hashes.SHA256())
            if fp in seen:
                continue
            seen.add(fp)
            label = setting if position == 0 else f"{setting} issuer {_cn(cert.subject)}"
            results.append(expiry_check(f"{label} expiry", cert, now, warn_days))
    return results


# ------------------------------------------------------------------------------------ extra keys
def extra_key_checks(path: str, primary: PrivateKey | None, now: datetime,
                     warn_days: int = WARN_DAYS) -> list[CheckResult]:
    """A key kept for rotation: its format and size, and — when it is a certificate — its expiry. Bare
    keys carry no expiry date; the file's age is reported so a stale rotation shows."""
    name = f"extra key {Path(path).name}"
    try:
        text = Path(path).expanduser().read_text(encoding="ascii", errors="ignore")
        age = (time.time() - Path(path).expanduser().stat().st_mtime) / 86400
    except OSError as exc:
        return [fail(name, f"cannot read the file ({exc.strerror})")]
    if "CERTIFICATE" in text:
        certs, _ = pem_certificates(text)
        if not certs:
            return [fail(name, "holds no readable X.509 certificate")]
        cert = certs[0]
        key = _public_key(cert)
        kind = f"certificate for {_cn(cert.subject)}, " + (
            _describe(key) if isinstance(key, rsa.RSAPublicKey) else "non-RSA key")
        return [ok(name, kind), expiry_check(f"{name} expiry", cert, now, warn_days)]
    header = re.search(r"-----BEGIN ([A-Z ]+)-----", text)
    form = {"RSA PRIVATE KEY": "PKCS#1 PEM", "PRIVATE KEY": "PKCS#8 PEM",
            "PUBLIC KEY": "SubjectPublicKeyInfo PEM"}.get(header.group(1) if header else "", "bare base64")
    aged = f", file {age:.0f} days old"
    try:
        private = load_private_key(text, "extra key")
    except ConfigurationError:
        try:
            public = load_public_key(text, "extra key")
        except ConfigurationError:
            return [fail(name, "is neither an RSA key nor a certificate (PEM or bare base64)")]
        return [_size_result(name, public, f"public key, {form}, {_describe(public)}{aged}")]
    if primary is not None and check_key_pair(primary, private.public_key()):
        return [warn(name, f"is the same key as app_private_key ({fingerprint(private)})")]
    return [_size_result(name, private, f"private key, {form}, {_describe(private)}{aged}")]


def _size_result(name: str, key: PublicKey | PrivateKey, detail: str) -> CheckResult:
    if key.key_size < 2048:
        return warn(name, f"{detail}; under 2048 bits, Alipay requires RSA2 with 2048")
    return ok(name, detail)


# ---------------------------------------------------------------------------------- gateway call
#: The gateway's answers that say it could not verify *our* request's signature (v2 sub_code, v3 code).
REQUEST_SIGNATURE_REFUSED = frozenset({"isv.invalid-signature", "invalid-signature"})
#: Other refusals whose cause is one setting of the deployment: the setting, and what to do.
_REFUSED_SETTING = {
    "isv.invalid-app-id": ("app_id", "is not an app of this gateway (sandbox and production ids differ)"),
    "isv.invalid-app-cert-sn": ("app_cert", "is not the app certificate Alipay has for this app_id: download "
                                            "it again from the console"),
    "isv.invalid-alipay-root-cert-sn": ("alipay_root_cert", "is not Alipay's root certificate bundle: "
                                                            "download alipayRootCert.crt again from the console"),
}


def gateway_check(settings: AlipaySettings, model: str = DEFAULT_MODEL, timeout: float = 10.0) -> CheckResult:
    """One signed ``alipay.cloud.ai.embed`` call: the gateway verifies our signature and we verify its
    answer, so both key halves and the certificate SNs are exercised end to end. The first finding of
    ``gateway_checks``."""
    return gateway_checks(settings, model, timeout)[0]


def gateway_checks(settings: AlipaySettings, model: str = DEFAULT_MODEL, timeout: float = 10.0
                   ) -> list[CheckResult]:
    """The signed test call, and when it fails, which setting is at fault.

    A signature can fail on either side, and the fix is in a different setting for each: the gateway
    refusing our request's signature (``isv.invalid-signature``; v3 ``invalid-signature``) means the app
    key; our failing to verify the gateway's answer means Alipay's public key (or certificate). When our
    verification fails, the call is made once more without it, only to read what the gateway said: a
    well-formed answer proves the key we verify with is the wrong one, and a refusal in it names the
    other side too (both keys wrong). Nothing from that unverified answer is used but its error code.
    """
    name = "gateway call"
    started = time.perf_counter()
    try:
        node = _embed(settings, model, timeout)
    except Exception as exc:  # every failure of the call is the finding, whatever its class
        if getattr(exc, "alipay_code", None) != "unverified-response" or not settings.verify_response:
            return [_refusal(name, exc, settings)]
        try:
            _embed(replace(settings, verify_response=False), model, timeout)
        except Exception as unverified_exc:  # what the gateway said, read without verifying it
            if getattr(unverified_exc, "sub_code", None) in REQUEST_SIGNATURE_REFUSED:
                return [_response_key_failure(name, settings, "its refusal below"),
                        _refusal(name, unverified_exc, settings)]
            return [_refusal(name, exc, settings)]  # not a well-formed answer either: say what we saw
        return [_response_key_failure(name, settings, "its answer")]
    ms = (time.perf_counter() - started) * 1000
    if not node.get("data"):
        return [fail(name, "signed answer verified but it holds no embedding")]
    return [ok(name, f"signed embed call to {settings.gateway_url} verified "
                     f"(trace_id={node.get('trace_id')}, {ms:.0f} ms)")]


def _embed(settings: AlipaySettings, model: str, timeout: float) -> dict[str, Any]:
    from ..backends.gateway import Gateway
    from ..wire import protocol

    return Gateway(settings).call(protocol.METHOD_EMBED, {"model": model, "input": ["ping"]}, model,
                                  timeout=timeout)


def _response_key_failure(name: str, settings: AlipaySettings, what: str) -> CheckResult:
    if settings.cert_ring is not None:
        setting, key = "alipay_public_cert", "Alipay's public key certificate (alipayCertPublicKey_RSA2.crt)"
    else:
        setting, key = "alipay_public_key", "Alipay's public key (支付宝公钥)"
    shown = f" ({fingerprint(settings.alipay_public_key)})" if settings.alipay_public_key is not None else ""
    return fail(name, f"setting {setting}{shown} is not {key} for app_id {settings.app_id}: the gateway "
                      f"answered, but the signature of {what} does not verify with it. Fix: copy {key} from "
                      "the Alipay console (开发设置 → 接口加签方式) of this app and environment (sandbox and "
                      "production keys differ) — not the app's own public key")


def _refusal(name: str, exc: BaseException, settings: AlipaySettings) -> CheckResult:
    """A failed call as one line: the setting at fault when the gateway's answer names it, else the error
    itself (its text from the network bounded, our own fix hint after it never cut)."""
    sub_code = getattr(exc, "sub_code", None)
    trace = f", trace_id={exc.trace_id}" if getattr(exc, "trace_id", None) else ""  # type: ignore[attr-defined]
    if sub_code in REQUEST_SIGNATURE_REFUSED:
        own = "app_cert" if settings.cert_ring is not None else "app public key"
        return fail(name, f"setting app_private_key ({fingerprint(settings.app_private_key)}) does not sign as "
                          f"app_id {settings.app_id}: the gateway refused our request's signature ({sub_code}"
                          f"{trace}), so it is not the private half of the {own} registered in the Alipay "
                          "console. Fix: configure that private key, or upload this one's public key (`litellm-"
                          "alipay keygen` makes a new pair); `litellm-alipay check --app-public-key <the key "
                          "uploaded in the console>` compares them")
    if sub_code in _REFUSED_SETTING:
        setting, problem = _REFUSED_SETTING[sub_code]
        return fail(name, f"setting {setting} {problem} (the gateway answered {sub_code}{trace})")
    return fail(name, error_text(exc))


# ------------------------------------------------------------------------------------------ run
def run_checks(given: Mapping[str, Any], options: CheckOptions = CheckOptions(),
               now: datetime | None = None) -> list[CheckResult]:
    """Every check for one deployment: ``given`` are deployment settings (as ``litellm_params``),
    completed from ``options.env`` (default ``os.environ``) exactly as the provider would."""
    env = os.environ if options.env is None else options.env
    now = now or datetime.now(UTC)
    results: list[CheckResult] = []
    settings: AlipaySettings | None = None
    try:
        settings = build_settings(given, env)
    except ConfigurationError as exc:
        results.append(fail("settings", str(exc)))
    else:
        mode = "certificate" if settings.cert_ring else "public key"
        results.append(ok("settings", f"app_id={settings.app_id} gateway={settings.gateway_url} "
                                      f"{settings.protocol} {settings.sign_type}, {mode} mode"))

    private = settings.app_private_key if settings else None
    if private is not None and options.app_public_key:
        try:
            own = load_public_key(read_key_text("app_public_key", options.app_public_key), "app_public_key")
        except ConfigurationError as exc:
            results.append(fail("app_public_key", str(exc)))
        else:
            results.append(key_pair_check(private, own, "app_public_key"))
    if settings is not None and settings.alipay_public_key is not None:
        results.append(not_own_key_check(settings.app_private_key, settings.alipay_public_key,
                                         "alipay_public_key"))

    texts: dict[str, str | None] = {}
    for setting in ("app_cert", "alipay_public_cert", "alipay_root_cert"):
        raw = raw_value(setting, given, env)
        try:
            texts[setting] = read_key_text(setting, str(raw)) if raw else None
        except ConfigurationError as exc:
            results.append(fail(setting, str(exc)))
            texts[setting] = None
    if any(texts.values()):
        results.extend(certificate_checks(texts["app_cert"], texts["alipay_public_cert"],
                                          texts["alipay_root_cert"], now, options.warn_days))
        if private is not None and texts["app_cert"]:
            certs, _ = pem_certificates(texts["app_cert"])
            key = _public_key(certs[0]) if certs else None
            if isinstance(key, rsa.RSAPublicKey):
                results.append(key_pair_check(private, key, "app_cert"))
        if private is not None and texts["alipay_public_cert"]:
            certs, _ = pem_certificates(texts["alipay_public_cert"])
            key = _public_key(certs[0]) if certs else None
            if isinstance(key, rsa.RSAPublicKey):
                results.append(not_own_key_check(private, key, "alipay_public_cert key"))

    for path in options.extra_keys:
        results.extend(extra_key_checks(path, private, now, options.warn_days))

    if options.call and settings is not None:
        results.extend(gateway_checks(settings, options.model, options.timeout))
    return results


# ------------------------------------------------------------------------------------------ alert
def alert_body(results: Sequence[CheckResult], *, source: str, app_id: str | None,
               routing_key: str | None = None) -> dict[str, Any]:
    """The combined Slack + PagerDuty Events v2 body (see the module docstring)."""
    bad = [r for r in results if r.status == "FAIL"]
    app = app_id or "unknown app"
    summary = f"litellm-alipay check failed for {app} on {source}: " + "; ".join(
        f"{r.name}: {r.detail}" for r in bad)
    if len(summary) > _SUMMARY_MAX:
        summary = summary[: _SUMMARY_MAX - 1] + "…"
    body: dict[str, Any] = {
        "text": summary,
        "event_action": "trigger",
        "dedup_key": f"litellm-alipay-check:{app}",
        "payload": {
            "summary": summary, "severity": "error", "source": source, "component": "litellm-alipay",
            "group": app, "custom_details": {"checks": [r.as_dict() for r in results]},
        },
    }
    if routing_key:
        body["routing_key"] = routing_key
    return body


def post_webhook(url: str, body: Mapping[str, Any], timeout: float = 10.0) -> CheckResult:
    """POST the alert; the result never names the URL (a Slack webhook URL is a credential)."""
    import httpx

    try:
        response = httpx.post(url, json=dict(body), timeout=timeout)
    except httpx.HTTPError as exc:
        return warn("webhook", f"alert not delivered ({type(exc).__name__})")
    if response.status_code >= 300:
        return warn("webhook", f"alert refused with HTTP {response.status_code}")
    return ok("webhook", f"alert delivered (HTTP {response.status_code})")


# -------------------------------------------------------------------------------------------- CLI
_SETTING_ARGS = ("app_id", "app_private_key", "alipay_public_key", "api_base", "sign_type",
                 "app_cert", "alipay_public_cert", "alipay_root_cert")


def run(args: argparse.Namespace) -> int:
    given = {name: getattr(args, name) for name in _SETTING_ARGS if getattr(args, name)}
    options = CheckOptions(app_public_key=args.app_public_key, extra_keys=tuple(args.extra_key or ()),
                           call=not args.no_call, model=args.model, warn_days=args.warn_days,
                           timeout=args.timeout)
    if args.backend == "ant-ling":  # Ant's Ling/Ring models: a bearer key, no Alipay app
        from .ant_ling_check import ant_ling_checks

        results = ant_ling_checks({"api_base": args.api_base, "api_key": args.api_key}, call=not args.no_call,
                                  model=None if args.model == DEFAULT_MODEL else args.model, timeout=args.timeout)
    else:
        results = run_checks(given, options)
    for result in results:
        print(result.line())
    bad = failed(results)
    if bad and args.webhook:
        app_id = given.get("app_id") or os.environ.get(ENV["app_id"])
        routing_key = args.routing_key or os.environ.get(ROUTING_KEY_ENV)
        body = alert_body(results, source=args.source, app_id=app_id, routing_key=routing_key)
        print(post_webhook(args.webhook, body, args.timeout).line())
    sys.stdout.flush()
    return 1 if bad else 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser(
        "check", help="validate a deployment's settings, keys and certificates, and make a signed test call",
        description="Each setting falls back to its ALIPAY_* environment variable, as in the provider. "
                    "Keys and certificates may be given as file paths (preferred: key text on a command "
                    "line is visible to other users).",
    )
    for name in _SETTING_ARGS:
        check.add_argument("--" + name.replace("_", "-"), dest=name, help=f"(env {ENV[name]})")
    check.add_argument("--backend", choices=("gateway", "ant-ling"), default="gateway",
                       help="ant-ling: check an Ant Ling deployment (key from --api-key or ANT_LING_API_KEY, "
                            "api_base default https://api.ant-ling.com/v1) and list the models its key can see")
    check.add_argument("--api-key", help="Ant Ling API key (prefer the ANT_LING_API_KEY environment variable)")
    check.add_argument("--app-public-key", help="the app's own public key as uploaded to Alipay: "
                                                "checked to pair with the private key")
    check.add_argument("--extra-key", action="append", metavar="FILE",
                       help="another active key or certificate kept for rotation (repeatable)")
    check.add_argument("--no-call", action="store_true", help="skip the signed test call to the gateway")
    check.add_argument("--model", default=DEFAULT_MODEL, help=f"embedding model of the test call "
                                                              f"(default {DEFAULT_MODEL})")
    check.add_argument("--warn-days", type=int, default=WARN_DAYS,
                       help=f"warn when a certificate expires within this many days (default {WARN_DAYS})")
    check.add_argument("--timeout", type=float, default=10.0, help="seconds for the test call and webhook")
    check.add_argument("--webhook", metavar="URL", help="POST a Slack/PagerDuty alert here on any FAIL")
    check.add_argument("--routing-key", help=f"PagerDuty Events v2 routing key (env {ROUTING_KEY_ENV})")
    check.add_argument("--source", default=socket.gethostname(), help="alert source (default: host name)")
    check.set_defaults(func=run)
