"""The one error hierarchy of the core; the CLI maps it to exit codes in one place.

Every error carries its message twice, written side by side where it is raised: `zh` for the office (the CLI's
default language, Prefect's UI) and `en` for `--lang en`. `str(exc)` is the English text, so logs and tests read one
stable sentence whatever the language a person chose."""

from __future__ import annotations

from typing import Any

from states.columns import chinese_header


def _restore(cls: type[CampaignError], state: dict[str, Any]) -> CampaignError:
    error = cls.__new__(cls)
    Exception.__init__(error, state["en"])
    error.__dict__.update(state)
    return error


class CampaignError(Exception):
    """Root of every error a user can cause; never shown with a traceback."""

    exit_code = 1

    def __init__(self, *, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en

    def text(self, lang: str) -> str:
        """The message in `lang` ("zh-CN", the default, or "en")."""
        return self.en if lang == "en" else self.zh

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only texts: pickling (Prefect's results, multiprocessing) rebuilds from the state, not from args.
        return _restore, (type(self), dict(self.__dict__))


class Refused(CampaignError):
    """Raised when well-formed input is refused by the campaign's rules (exit 1)."""

    exit_code = 1


class BadInput(CampaignError):
    """Raised when input is malformed or names something that does not exist (exit 2)."""

    exit_code = 2


class NotFound(BadInput):
    """Raised when an id (campaign, member, branch, person) is unknown."""


def _named(column: str | None, header: str | None, lang: str) -> str | None:
    """The column as the file heads it, beside its English name where they differ; in Chinese a file with English
    headers still reads its Chinese header (`角色 (role)`)."""
    if column is None:
        return header
    shown = header if header and header != column else (chinese_header(column) if lang == "zh" else None)
    return f"{shown} ({column})" if shown and shown != column else column


def _where(path: str, line: int | None, column: str | None, header: str | None, sheet: str | None,
           letter: str | None, lang: str) -> str:
    """The place of a fault: `roster.xlsx [花名册] 第5行 F列 角色 (role)` in a sheet (in both languages, as the
    office's spreadsheet names it); in a text file `roster.csv, line 5, column role` or `roster.csv 第5行，角色 (role) 列`."""
    named = _named(column, header, lang)
    if sheet is not None:
        parts = [f"{path} [{sheet}]", f"第{line}行" if line is not None else "", f"{letter}列" if letter else "", named or ""]
        return " ".join(p for p in parts if p)
    if lang == "zh":
        where = path + (f" 第{line}行" if line is not None else "")
        return where + (("，" if line is not None else " ") + f"{named} 列" if named else "")
    return path + (f", line {line}" if line is not None else "") + (f", column {named}" if named else "")


class MalformedFile(BadInput):
    """Raised when a file cannot be read or one of its rows is malformed; names file, line and column — in a
    spreadsheet its sheet, row and cell column (`roster.xlsx [花名册] 第5行 F列 角色 (role): …`)."""

    def __init__(
        self,
        path: str,
        line: int | None,
        column: str | None,
        *,
        zh: str,
        en: str,
        sheet: str | None = None,
        letter: str | None = None,
        header: str | None = None,
    ) -> None:
        super().__init__(
            zh=f"{_where(path, line, column, header, sheet, letter, 'zh')}：{zh}",
            en=f"{_where(path, line, column, header, sheet, letter, 'en')}: {en}",
        )
        self.path, self.line, self.column, self.sheet, self.letter = path, line, column, sheet, letter
        self.why_zh, self.why_en = zh, en


class Unauthorized(Refused):
    """Raised when the actor's role does not allow the action on its subject."""


class ConditionsUnmet(Refused):
    """Raised when a transition's preconditions do not hold; carries the unmet conditions."""

    def __init__(self, *, zh: str, en: str, unmet: list[dict[str, object]] | None = None) -> None:
        super().__init__(zh=zh, en=en)
        self.unmet = unmet or []


class NoQuorum(Refused):
    """Raised when a member meeting has not more than half of the entitled members present."""


class QuotaExceeded(Refused):
    """Raised when a selection (excellent members) would exceed the plan's quota."""


class InvalidTransition(Refused):
    """Raised when a trigger is not allowed from the subject's current state."""


class EnvironmentFailed(CampaignError):
    """Raised when the environment fails the command, not its input or the rules: the database does not answer,
    the disk is full (exit 3)."""

    exit_code = 3
