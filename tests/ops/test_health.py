"""``litellm-alipay check``: certificate chains and expiry, key pairs, extra keys, the webhook alert,
and the signed test call against the emulator. Certificates are made here with ``cryptography``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from litellm_alipay.cli import main
from litellm_alipay.ops.health import (
    CheckOptions,
    alert_body,
    certificate_checks,
    chain_check,
    expiry_check,
    extra_key_checks,
    fail,
    ok,
    run_checks,
)
from litellm_alipay.settings import ENV
from litellm_alipay.wire.signing import generate_private_key, private_key_forms

NOW = datetime.now(UTC)
APP_ID = "2021000000000042"


# ------------------------------------------------------------------------------------ cert factory
def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_cert(cn: str, key: rsa.RSAPrivateKey, issuer_cn: str, signer: rsa.RSAPrivateKey, *,
              not_after: datetime | None = None, not_before: datetime | None = None,
              ca: bool = False) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(issuer_cn)).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(days=30))
        .not_valid_after(not_after or NOW + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(signer, hashes.SHA256())


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in certs)


class PKI:
    """A root CA, an intermediate, an app key/cert and an Alipay key/cert: a well-formed deployment."""

    def __init__(self) -> None:
        self.root_key = generate_private_key()
        self.root = make_cert("Test Root R1", self.root_key, "Test Root R1", self.root_key, ca=True,
                              not_after=NOW + timedelta(days=3650))
        self.inter_key = generate_private_key()
        self.inter = make_cert("Test Class 2 R1", self.inter_key, "Test Root R1", self.root_key, ca=True)
        self.app_key = generate_private_key()
        self.app_cert = make_cert(APP_ID, self.app_key, "Test Root R1", self.root_key)
        self.alipay_key = generate_private_key()
        self.alipay_cert = make_cert("Alipay", self.alipay_key, "Test Class 2 R1", self.inter_key)


@pytest.fixture(scope="module")
def pki() -> PKI:
    return PKI()


@pytest.fixture(autouse=True)
def no_alipay_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads ALIPAY_* from the environment: start every test from none."""
    for var in ENV.values():
        monkeypatch.delenv(var, raising=False)


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def private_pem(key: rsa.RSAPrivateKey) -> str:
    return private_key_forms(key)["private_pem"]


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return private_key_forms(key)["public_pem"]


# --------------------------------------------------------------------------------------- expiry
def test_expiry_ok_warn_and_fail(pki: PKI) -> None:
    k = pki.app_key
    fine = expiry_check("c", make_cert("a", k, "Test Root R1", pki.root_key), NOW)
    soon = expiry_check("c", make_cert("a", k, "Test Root R1", pki.root_key,
                                       not_after=NOW + timedelta(days=10, hours=1)), NOW)
    gone = expiry_check("c", make_cert("a", k, "Test Root R1", pki.root_key,
                                       not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(days=3)),
                        NOW)
    early = expiry_check("c", make_cert("a", k, "Test Root R1", pki.root_key,
                                        not_before=NOW + timedelta(days=2)), NOW)
    assert fine.status == "OK"
    assert soon.status == "WARN" and "in 10 days" in soon.detail
    assert gone.status == "FAIL" and "expired" in gone.detail
    assert early.status == "FAIL" and "not valid before" in early.detail


def test_warn_window_is_configurable(pki: PKI) -> None:
    cert = make_cert("a", pki.app_key, "Test Root R1", pki.root_key, not_after=NOW + timedelta(days=45))
    assert expiry_check("c", cert, NOW, warn_days=30).status == "OK"
    assert expiry_check("c", cert, NOW, warn_days=60).status == "WARN"


# ---------------------------------------------------------------------------------------- chain
def test_chain_direct_and_through_an_intermediate(pki: PKI) -> None:
    direct, path = chain_check("app_cert chain", [pki.app_cert], [pki.root])
    assert direct.status == "OK" and "Test Root R1" in direct.detail
    assert path == [pki.app_cert, pki.root]
    via, path = chain_check("alipay chain", [pki.alipay_cert, pki.inter], [pki.root])
    assert via.status == "OK" and "1 intermediate" in via.detail
    assert path == [pki.alipay_cert, pki.inter, pki.root]


def test_chain_fails_on_a_wrong_issuer(pki: PKI) -> None:
    other_key = generate_private_key()
    stranger = make_cert(APP_ID, pki.app_key, "Someone Else CA", other_key)
    result, _ = chain_check("app_cert chain", [stranger], [pki.root])
    assert result.status == "FAIL" and "Someone Else CA" in result.detail
    # an intermediate missing from the file is a failure too
    result, _ = chain_check("alipay chain", [pki.alipay_cert], [pki.root])
    assert result.status == "FAIL" and "Test Class 2 R1" in result.detail


def test_chain_fails_when_the_issuer_name_matches_but_the_signature_does_not(pki: PKI) -> None:
    forged = make_cert(APP_ID, pki.app_key, "Test Root R1", generate_private_key())
    result, _ = chain_check("app_cert chain", [forged], [pki.root])
    assert result.status == "FAIL" and "signature does not verify" in result.detail


def test_certificate_checks_report_chain_and_every_expiry(pki: PKI) -> None:
    expiring_inter = make_cert("Test Class 2 R1", pki.inter_key, "Test Root R1", pki.root_key, ca=True,
                               not_after=NOW + timedelta(days=10))
    results = certificate_checks(pem(pki.app_cert), pem(pki.alipay_cert, expiring_inter), pem(pki.root), NOW)
    by_name = {r.name: r.status for r in results}
    assert by_name["app_cert chain"] == "OK"
    assert by_name["alipay_public_cert chain"] == "OK"
    assert by_name["app_cert expiry"] == "OK"
    assert by_name["alipay_public_cert issuer Test Class 2 R1 expiry"] == "WARN"
    # the root is on both paths but is reported once
    assert sum(1 for r in results if "Test Root R1 expiry" in r.name) == 1


# ------------------------------------------------------------------------------------ run_checks
def key_mode(pki: PKI, **extra: str) -> dict[str, str]:
    return {"app_id": APP_ID, "app_private_key": private_pem(pki.app_key),
            "alipay_public_key": public_pem(pki.alipay_key), "api_base": "http://127.0.0.1:9/gateway.do",
            **extra}


def test_matching_key_pair_passes(pki: PKI) -> None:
    results = run_checks(key_mode(pki), CheckOptions(app_public_key=public_pem(pki.app_key), call=False,
                                                     env={}))
    assert [r.status for r in results] == ["OK", "OK", "OK"]


def test_mismatched_key_pair_fails(pki: PKI) -> None:
    results = run_checks(key_mode(pki), CheckOptions(app_public_key=public_pem(generate_private_key()),
                                                     call=False, env={}))
    pair = next(r for r in results if r.name == "app_private_key / app_public_key")
    assert pair.status == "FAIL" and "not a pair" in pair.detail


def test_app_key_configured_as_alipay_key_fails(pki: PKI) -> None:
    results = run_checks(key_mode(pki, alipay_public_key=public_pem(pki.app_key)),
                         CheckOptions(call=False, env={}))
    mixup = next(r for r in results if r.name == "alipay_public_key")
    assert mixup.status == "FAIL" and "own public key" in mixup.detail


def test_certificate_mode_checks(pki: PKI, tmp_path: Path) -> None:
    given = {"app_id": APP_ID, "app_private_key": private_pem(pki.app_key),
             "app_cert": write(tmp_path, "app.crt", pem(pki.app_cert)),
             "alipay_public_cert": write(tmp_path, "alipay.crt", pem(pki.alipay_cert, pki.inter)),
             "alipay_root_cert": write(tmp_path, "root.crt", pem(pki.root))}
    results = run_checks(given, CheckOptions(call=False, env={}), NOW)
    assert all(r.status == "OK" for r in results), [r.line() for r in results]
    assert {"app_private_key / app_cert", "alipay_public_cert chain", "app_cert expiry"} <= {
        r.name for r in results}
    # an app cert for another key: the pair check fails
    given["app_cert"] = pem(make_cert(APP_ID, generate_private_key(), "Test Root R1", pki.root_key))
    results = run_checks(given, CheckOptions(call=False, env={}), NOW)
    assert next(r for r in results if r.name == "app_private_key / app_cert").status == "FAIL"


def test_bad_setting_is_a_failed_check(pki: PKI) -> None:
    results = run_checks(key_mode(pki, app_id="not-a-number"), CheckOptions(call=True, env={}))
    assert results[0].status == "FAIL" and results[0].detail.startswith("app_id:")
    assert all(r.name != "gateway call" for r in results)  # nothing to call with


# ------------------------------------------------------------------------------------ extra keys
def test_extra_keys_report_format_and_expiry(pki: PKI, tmp_path: Path) -> None:
    rotation = generate_private_key()
    pkcs1 = write(tmp_path, "next_pkcs1.txt", private_key_forms(rotation)["private_pkcs1"])
    same = write(tmp_path, "same.pem", private_pem(pki.app_key))
    expired = write(tmp_path, "old.crt", pem(make_cert(
        "old", rotation, "Test Root R1", pki.root_key, not_before=NOW - timedelta(days=90),
        not_after=NOW - timedelta(days=1))))
    junk = write(tmp_path, "junk.txt", "hello")
    assert extra_key_checks(pkcs1, pki.app_key, NOW)[0].status == "OK"
    assert "bare base64" in extra_key_checks(pkcs1, pki.app_key, NOW)[0].detail
    assert extra_key_checks(same, pki.app_key, NOW)[0].status == "WARN"
    assert [r.status for r in extra_key_checks(expired, pki.app_key, NOW)] == ["OK", "FAIL"]
    assert extra_key_checks(junk, pki.app_key, NOW)[0].status == "FAIL"
    assert extra_key_checks(str(tmp_path / "missing"), None, NOW)[0].status == "FAIL"


# ------------------------------------------------------------------------------------------ CLI
def test_cli_prints_one_line_per_check_and_never_a_key(pki: PKI, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path, "app.pem", private_pem(pki.app_key))
    code = main(["check", "--no-call", "--app-id", APP_ID, "--app-private-key", key,
                 "--alipay-public-key", public_pem(pki.alipay_key),
                 "--app-public-key", public_pem(generate_private_key())])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.strip().splitlines()
    assert all(line.split()[0] in ("OK", "WARN", "FAIL") for line in lines)
    assert any(line.startswith("FAIL app_private_key / app_public_key") for line in lines)
    forms = private_key_forms(pki.app_key)
    for secret in (forms["private_pkcs8"][40:80], forms["private_pkcs1"][40:80], forms["public"][40:80]):
        assert secret not in out


def test_cli_exit_zero_when_all_pass(pki: PKI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path, "app.pem", private_pem(pki.app_key))
    code = main(["check", "--no-call", "--app-id", APP_ID, "--app-private-key", key,
                 "--alipay-public-key", public_pem(pki.alipay_key)])
    assert code == 0, capsys.readouterr().out


# -------------------------------------------------------------------------------------- webhook
class Receiver:
    """A loopback HTTP server that records each POSTed JSON body (answering only after recording, so
    the poster's own wait for the response is the synchronisation)."""

    def __init__(self, status: int = 200) -> None:
        self.bodies: list[dict] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                received.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook/SECRET-TOKEN"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.close()


def test_webhook_posts_slack_and_pagerduty_fields_on_failure(pki: PKI, tmp_path: Path, receiver: Receiver,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    key = write(tmp_path, "app.pem", private_pem(pki.app_key))
    code = main(["check", "--no-call", "--app-id", APP_ID, "--app-private-key", key,
                 "--alipay-public-key", public_pem(pki.app_key),  # the classic mix-up: a FAIL
                 "--webhook", receiver.url, "--routing-key", "R0UTING", "--source", "host-7"])
    out = capsys.readouterr().out
    assert code == 1
    assert len(receiver.bodies) == 1
    body = receiver.bodies[0]
    assert "alipay_public_key" in body["text"] and APP_ID in body["text"]
    assert body["event_action"] == "trigger"
    assert body["routing_key"] == "R0UTING"
    assert body["dedup_key"] == f"litellm-alipay-check:{APP_ID}"
    payload = body["payload"]
    assert payload["summary"] == body["text"]
    assert payload["severity"] == "error" and payload["source"] == "host-7"
    assert {"status": "FAIL", "name": "alipay_public_key"}.items() <= payload["custom_details"]["checks"][1].items()
    assert "OK   webhook: alert delivered (HTTP 200)" in out
    assert "SECRET-TOKEN" not in out and "R0UTING" not in out


def test_webhook_not_posted_when_all_pass(pki: PKI, tmp_path: Path, receiver: Receiver) -> None:
    key = write(tmp_path, "app.pem", private_pem(pki.app_key))
    assert main(["check", "--no-call", "--app-id", APP_ID, "--app-private-key", key,
                 "--alipay-public-key", public_pem(pki.alipay_key), "--webhook", receiver.url]) == 0
    assert receiver.bodies == []


def test_alert_body_without_routing_key_and_long_summary() -> None:
    results = [ok("settings", "fine")] + [fail(f"check {i}", "x" * 100) for i in range(20)]
    body = alert_body(results, source="h", app_id=None)
    assert "routing_key" not in body
    assert len(body["payload"]["summary"]) == 1024
    assert body["text"] == body["payload"]["summary"]
    assert len(body["payload"]["custom_details"]["checks"]) == 21


# ------------------------------------------------------------------------- signed test call (emulator)
def test_signed_call_to_the_emulator(alipay_emulator, capsys: pytest.CaptureFixture[str]) -> None:
    e = alipay_emulator
    code = main(["check", "--app-id", e.app_id, "--app-private-key", e.app_private_key_path,
                 "--alipay-public-key", e.alipay_public_key_path, "--api-base", e.gateway_url])
    out = capsys.readouterr().out
    assert code == 0, out
    assert any(line.startswith("OK   gateway call") for line in out.splitlines())


def test_signed_call_fails_with_the_wrong_alipay_key(alipay_emulator, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    e = alipay_emulator
    wrong = write(tmp_path, "wrong.pem", public_pem(generate_private_key()))
    code = main(["check", "--app-id", e.app_id, "--app-private-key", e.app_private_key_path,
                 "--alipay-public-key", wrong, "--api-base", e.gateway_url])
    out = capsys.readouterr().out
    assert code == 1
    assert any(line.startswith("FAIL gateway call") for line in out.splitlines()), out


def test_signed_call_in_certificate_mode(alipay_emulator, capsys: pytest.CaptureFixture[str]) -> None:
    e = alipay_emulator
    code = main(["check", "--app-id", e.cert_app_id, "--app-private-key", e.app_private_key_path,
                 "--app-cert", e.app_cert_path, "--alipay-public-cert", e.alipay_cert_path,
                 "--alipay-root-cert", e.alipay_root_cert_path, "--api-base", e.gateway_url])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "OK   app_cert chain" in out and "OK   gateway call" in out


# ------------------------------------------------------- which side of a signature failed (emulator)
def _check_lines(e, monkeypatch, capsys, protocol: str, **settings: str) -> tuple[int, list[str]]:
    monkeypatch.setenv(ENV["protocol"], protocol)
    given = {"app_id": e.app_id, "app_private_key": e.app_private_key_path,
             "alipay_public_key": e.alipay_public_key_path, "api_base": e.gateway_url, **settings}
    argv = ["check"]
    for name, value in given.items():
        argv += ["--" + name.replace("_", "-"), value]
    code = main(argv)
    return code, [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL")]


@pytest.fixture
def other_key_pair(tmp_path: Path) -> tuple[str, str]:
    key = generate_private_key()
    return write(tmp_path, "other.pem", private_pem(key)), write(tmp_path, "other_pub.pem", public_pem(key))


ALIPAY_KEY_FIX = ("Fix: copy Alipay's public key (支付宝公钥) from the Alipay console (开发设置 → 接口加签方式) "
                  "of this app and environment (sandbox and production keys differ) — not the app's own public key")
APP_KEY_FIX = ("`litellm-alipay check --app-public-key <the key uploaded in the console>` compares them")


@pytest.mark.parametrize("protocol", ["v2", "v3"])
def test_a_wrong_alipay_public_key_is_named_with_its_whole_fix(alipay_emulator, monkeypatch, capsys,
                                                                other_key_pair, protocol) -> None:
    code, failures = _check_lines(alipay_emulator, monkeypatch, capsys, protocol, alipay_public_key=other_key_pair[1])
    assert code == 1 and len(failures) == 1, failures
    assert failures[0].startswith("FAIL gateway call: setting alipay_public_key (sha256:")
    assert "does not verify" in failures[0] and failures[0].endswith(ALIPAY_KEY_FIX)


@pytest.mark.parametrize("protocol", ["v2", "v3"])
def test_a_wrong_app_private_key_is_named_with_its_whole_fix(alipay_emulator, monkeypatch, capsys,
                                                              other_key_pair, protocol) -> None:
    code, failures = _check_lines(alipay_emulator, monkeypatch, capsys, protocol, app_private_key=other_key_pair[0])
    assert code == 1 and len(failures) == 1, failures
    assert failures[0].startswith("FAIL gateway call: setting app_private_key (sha256:")
    assert "the gateway refused our request's signature" in failures[0] and failures[0].endswith(APP_KEY_FIX)


def test_both_keys_wrong_names_both_settings(alipay_emulator, monkeypatch, capsys, other_key_pair,
                                             tmp_path) -> None:
    third = write(tmp_path, "third_pub.pem", public_pem(generate_private_key()))
    code, failures = _check_lines(alipay_emulator, monkeypatch, capsys, "v2", app_private_key=other_key_pair[0],
                                  alipay_public_key=third)
    assert code == 1
    assert [line.split(" (")[0] for line in failures] == [
        "FAIL gateway call: setting alipay_public_key", "FAIL gateway call: setting app_private_key"]


def test_a_wrong_alipay_certificate_is_named(alipay_emulator, monkeypatch, capsys) -> None:
    e = alipay_emulator
    monkeypatch.setenv(ENV["protocol"], "v2")
    # the app's own certificate where Alipay's belongs: same root, so only the signed call can tell
    code = main(["check", "--app-id", e.cert_app_id, "--app-private-key", e.app_private_key_path,
                 "--app-cert", e.app_cert_path, "--alipay-public-cert", e.app_cert_path,
                 "--alipay-root-cert", e.alipay_root_cert_path, "--api-base", e.gateway_url])
    failures = [line for line in capsys.readouterr().out.splitlines() if line.startswith("FAIL")]
    assert code == 1
    assert any(line.startswith("FAIL gateway call: setting alipay_public_cert is not Alipay's public key "
                               "certificate") for line in failures), failures


def test_an_error_line_bounds_the_servers_text_but_never_cuts_the_fix() -> None:
    from litellm_alipay.ops.check_result import ERROR_TEXT_MAX, error_text

    hint = " — hint: " + "do this and then that; " * 20
    line = error_text(RuntimeError("x" * 5000 + hint))
    assert line.endswith(hint.strip()) and len(line) < ERROR_TEXT_MAX + len(hint) + 40
    assert error_text(RuntimeError("short")) == "RuntimeError: short"
