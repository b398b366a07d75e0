"""The Prefect UI's login: one `user:password` for Prefect's basic auth, from the environment or a private file.

Open-source Prefect has one credential and no user accounts: whoever holds it is "an operator", never a named
person (a decision that names a person proves it with that person's one-time code, `states/codes.py`). The server
reads `PREFECT_SERVER_API_AUTH_STRING`, every client sends `PREFECT_API_AUTH_STRING`; this module makes both the
same string. Without either in the environment, `make run` generates one on first run into `var/ui-credentials`
(mode 0600, created with O_EXCL so two starts agree on one), and later runs and the CLI read it back.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

SERVER_VARIABLE = "PREFECT_SERVER_API_AUTH_STRING"
CLIENT_VARIABLE = "PREFECT_API_AUTH_STRING"
FILE_VARIABLE = "CAMPAIGN_UI_CREDENTIALS"
DEFAULT_FILE = Path("var") / "ui-credentials"
USER = "operator"


class LoginUnavailable(RuntimeError):
    """The credentials can be neither read nor created, or are malformed (the service cannot start)."""


def credentials_path() -> Path:
    """`CAMPAIGN_UI_CREDENTIALS`, else `var/ui-credentials` in the working directory (where the database is)."""
    return Path(os.environ.get(FILE_VARIABLE) or DEFAULT_FILE)


def _checked(text: str, where: str) -> str:
    value = text.strip()
    user, sep, password = value.partition(":")
    # Basic auth cannot carry a ':' in the user name; whitespace or control characters would break the header.
    if not sep or not user or not password or any(c.isspace() or ord(c) < 32 for c in value):
        raise LoginUnavailable(f"{where} is not one line user:password")
    return value


def _from_environment() -> tuple[str, str] | None:
    for variable in (SERVER_VARIABLE, CLIENT_VARIABLE):
        given = os.environ.get(variable)
        if given:
            return _checked(given, variable), variable
    return None


def read_credentials(path: Path | None = None) -> tuple[str, str] | None:
    """The auth string and where it came from (a variable's name or the file), or None when there is none yet."""
    found = _from_environment()
    if found:
        return found
    path = path or credentials_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LoginUnavailable(f"cannot read {path}: {exc.strerror}") from None
    return _checked(text, str(path)), str(path)


def ensure_credentials(path: Path | None = None) -> tuple[str, str]:
    """The auth string and where it is; on first run (nothing in the environment, no file) a new one in the file."""
    path = path or credentials_path()
    found = read_credentials(path)
    if found:
        return found
    value = f"{USER}:{secrets.token_urlsafe(18)}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another start won the race: use its string
        found = read_credentials(path)
        assert found is not None
        return found
    except OSError as exc:
        raise LoginUnavailable(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(value + "\n")
        out.flush()
        os.fsync(out.fileno())
    return value, str(path)


def use_for_clients(path: Path | None = None) -> bool:
    """Make this process's Prefect clients send the login (the CLI calls this before it talks to Prefect); True
    when a login was found. Prefect reads its settings once, at import: when it is already imported, its global
    settings are refreshed so the next client sees the variable."""
    found = read_credentials(path)
    if found is None:
        return False
    os.environ[CLIENT_VARIABLE] = found[0]
    if "prefect.context" in sys.modules:
        from prefect.context import refresh_global_settings_context

        refresh_global_settings_context()
    return True
