"""The service's secret keys (the audit seal's, the one-time codes'), kept outside the database and outside Prefect."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from states.errors import CampaignError
from states.settings import Settings

KEY_BYTES = 32


class KeyUnavailable(CampaignError):
    """Raised when a key can be neither read from the environment nor read or created in the key folder (exit 3:
    the environment failed)."""

    exit_code = 3


def secret_key(settings: Settings, name: str) -> bytes:
    """The key `name` (lowercase letters and dashes): `CAMPAIGN_<NAME>_KEY` from the environment (hex, at least 32
    bytes), else `<key_dir>/<name>.key`, created on first use with 32 random bytes, mode 0600 (O_EXCL, so two
    processes starting at once agree on one key)."""
    variable = f"CAMPAIGN_{name.upper().replace('-', '_')}_KEY"
    given = os.environ.get(variable)
    if given:
        try:
            key = bytes.fromhex(given.strip())
        except ValueError:
            raise KeyUnavailable(zh=f"{variable} 不是十六进制", en=f"{variable} is not hexadecimal") from None
        if len(key) < KEY_BYTES:
            raise KeyUnavailable(zh=f"{variable} 短于 {KEY_BYTES} 字节", en=f"{variable} is shorter than {KEY_BYTES} bytes")
        return key
    path = Path(settings.key_dir) / f"{name}.key"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        else:
            key = secrets.token_bytes(KEY_BYTES)
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(key.hex() + "\n")
                out.flush()
                os.fsync(out.fileno())
    except (OSError, ValueError) as exc:
        raise KeyUnavailable(zh=f"无法在 {path} 读取或创建密钥 {name!r}：{exc}", en=f"key {name!r} unavailable at {path}: {exc}") from None
    if len(key) < KEY_BYTES:
        raise KeyUnavailable(zh=f"密钥文件 {path} 不足 {KEY_BYTES} 字节", en=f"key file {path} holds fewer than {KEY_BYTES} bytes")
    return key
