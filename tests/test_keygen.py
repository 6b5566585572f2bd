"""``litellm-alipay keygen``: files, modes, and keys the official SDK can sign with."""

import stat

from alipay.aop.api.util.SignatureUtils import sign_with_rsa2

from litellm_alipay.cli import main
from litellm_alipay.keygen import FILES
from litellm_alipay.wire.signing import (
    build_sign_content,
    check_key_pair,
    load_private_key,
    load_public_key,
    rsa_verify,
    verify_params,
)

PRIVATE = ["app_private_key_pkcs1.txt", "app_private_key_pkcs8.txt", "app_private_key.pem"]
PUBLIC = ["app_public_key.txt", "app_public_key.pem"]


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keygen_writes_the_key_pair(tmp_path, capsys):
    out = tmp_path / "keys"
    assert main(["keygen", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(PRIVATE + PUBLIC) == sorted(FILES)
    assert _mode(out) == 0o700
    for name in PRIVATE:
        assert _mode(out / name) == 0o600, name
    for name in PUBLIC:
        assert _mode(out / name) == 0o644, name

    public_text = (out / "app_public_key.txt").read_text().strip()
    printed = capsys.readouterr().out
    assert public_text in printed
    for name in PRIVATE:  # the private key is never printed
        compact = "".join(line for line in (out / name).read_text().splitlines() if "-----" not in line)
        assert len(compact) > 1000
        assert compact[-200:-140] not in printed  # near the end: CRT values, not the modulus

    # every private file holds the same key, the public files its public half
    keys = [load_private_key((out / name).read_text()) for name in PRIVATE]
    assert len({k.private_numbers().d for k in keys}) == 1
    for name in PUBLIC:
        assert check_key_pair(keys[0], load_public_key((out / name).read_text()))
    assert "BEGIN" not in (out / "app_private_key_pkcs1.txt").read_text()
    assert "BEGIN" not in public_text


def test_official_sdk_signs_with_the_written_key(tmp_path):
    out = tmp_path / "keys"
    assert main(["keygen", "--out", str(out)]) == 0
    pkcs1 = (out / "app_private_key_pkcs1.txt").read_text().strip()
    params = {
        "app_id": "2021000000000001", "method": "alipay.cloud.ai.chat", "format": "json",
        "charset": "utf-8", "sign_type": "RSA2", "timestamp": "2024-05-13 17:49:20", "version": "1.0",
        "biz_content": '{"content":"你好 & = 😀"}',
    }
    content = build_sign_content(params)
    sign = sign_with_rsa2(pkcs1, content, "utf-8")
    for name in PUBLIC:
        public = (out / name).read_text()
        assert verify_params({**params, "sign": sign}, public)
        assert rsa_verify(content.encode(), sign, public)
    assert not verify_params({**params, "biz_content": "{}", "sign": sign}, (out / PUBLIC[0]).read_text())


def test_keygen_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "keys"
    assert main(["keygen", "--out", str(out)]) == 0
    before = {name: (out / name).read_text() for name in FILES}
    capsys.readouterr()

    assert main(["keygen", "--out", str(out)]) == 1
    assert "--force" in capsys.readouterr().err
    assert {name: (out / name).read_text() for name in FILES} == before

    assert main(["keygen", "--out", str(out), "--force"]) == 0
    after = {name: (out / name).read_text() for name in FILES}
    assert after["app_private_key_pkcs1.txt"] != before["app_private_key_pkcs1.txt"]
    assert after["app_public_key.txt"] != before["app_public_key.txt"]
    for name in PRIVATE:
        assert _mode(out / name) == 0o600


def test_keygen_refuses_when_any_key_file_exists(tmp_path):
    out = tmp_path / "keys"
    out.mkdir()
    (out / "app_public_key.pem").write_text("mine\n")
    assert main(["keygen", "--out", str(out)]) == 1
    assert (out / "app_public_key.pem").read_text() == "mine\n"
    assert not (out / "app_private_key_pkcs1.txt").exists()


def test_force_resets_loose_permissions(tmp_path):
    out = tmp_path / "keys"
    assert main(["keygen", "--out", str(out)]) == 0
    (out / "app_private_key.pem").chmod(0o644)
    assert main(["keygen", "--out", str(out), "--force"]) == 0
    assert _mode(out / "app_private_key.pem") == 0o600
