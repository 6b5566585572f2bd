"""``litellm-alipay keygen``: a fresh RSA-2048 app key pair in every form the Alipay console uses."""

from __future__ import annotations

import os
from pathlib import Path

from .wire.signing import generate_private_key, private_key_forms

#: file name → (form key, is secret)
FILES = {
    "app_private_key_pkcs1.txt": ("private_pkcs1", True),
    "app_private_key_pkcs8.txt": ("private_pkcs8", True),
    "app_private_key.pem": ("private_pem", True),
    "app_public_key.txt": ("public", False),
    "app_public_key.pem": ("public_pem", False),
}


def _write(path: Path, text: str, secret: bool) -> None:
    mode = 0o600 if secret else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    os.chmod(path, mode)  # O_CREAT's mode does not apply to a file that already existed


def write_key_pair(directory: str | os.PathLike[str], force: bool = False) -> dict[str, Path]:
    """Write the pair into ``directory`` (mode 700; private files 600) and return the paths."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    existing = [name for name in FILES if (out / name).exists()]
    if existing and not force:
        raise FileExistsError(f"{out / existing[0]} exists; pass --force to replace the key pair")
    forms = private_key_forms(generate_private_key())
    paths = {}
    for name, (form, secret) in FILES.items():
        _write(out / name, forms[form], secret)
        paths[form] = out / name
    return paths
