"""The one error hierarchy of the core; the CLI maps it to exit codes in one place."""

from __future__ import annotations


class CampaignError(Exception):
    """Root of every error a user can cause; never shown with a traceback."""

    exit_code = 1


class Refused(CampaignError):
    """Raised when well-formed input is refused by the campaign's rules (exit 1)."""

    exit_code = 1


class BadInput(CampaignError):
    """Raised when input is malformed or names something that does not exist (exit 2)."""

    exit_code = 2


class NotFound(BadInput):
    """Raised when an id (campaign, member, branch, person) is unknown."""


class MalformedFile(BadInput):
    """Raised when a file cannot be read or one of its rows is malformed; names file, line and column — in a
    spreadsheet its sheet, row and cell column (`roster.xlsx [花名册] 第5行 F列 角色 (role): …`)."""

    def __init__(
        self,
        path: str,
        line: int | None,
        column: str | None,
        message: str,
        *,
        sheet: str | None = None,
        letter: str | None = None,
        header: str | None = None,
    ) -> None:
        named = column if not header or header == column else f"{header} ({column})"
        if sheet is not None:
            where = f"{path} [{sheet}]"
            if line is not None:
                where += f" 第{line}行"
            if letter:
                where += f" {letter}列"
            if named:
                where += f" {named}"
        else:
            where = path
            if line is not None:
                where += f", line {line}"
            if named:
                where += f", column {named}"
        super().__init__(f"{where}: {message}")
        self.path, self.line, self.column, self.reason = path, line, column, message
        self.sheet, self.letter = sheet, letter


class Unauthorized(Refused):
    """Raised when the actor's role does not allow the action on its subject."""


class ConditionsUnmet(Refused):
    """Raised when a transition's preconditions do not hold; carries the unmet conditions."""

    def __init__(self, message: str, unmet: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
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
