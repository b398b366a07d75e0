"""One Jinja2 environment for notices, and rendering a notice's subject, text and HTML in its locale."""


from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, pass_context, select_autoescape
from jinja2.runtime import Context

from notices.contexts import validate_context
from states import labels
from states.labels import Figure, Locale

TEMPLATES_DIR: Path = Path(__file__).resolve().parent.parent / "templates"

# -- the environment ------------------------------------------------------------------------------------------


def _locale(ctx: Context) -> Locale:
    return ctx["locale"]  # type: ignore[no-any-return]


@pass_context
def _phase_label(ctx: Context, name: str) -> str:
    return labels.phase_label(name, _locale(ctx))


@pass_context
def _state_label(ctx: Context, name: str) -> str:
    return labels.state_label(name, _locale(ctx))


@pass_context
def _rating_label(ctx: Context, name: str) -> str:
    return labels.rating_label(name, _locale(ctx))


@pass_context
def _level_label(ctx: Context, name: str) -> str:
    return labels.level_label(name, _locale(ctx))


@pass_context
def _level_role(ctx: Context, name: str) -> str:
    return labels.level_role(name, _locale(ctx))


@pass_context
def _condition_label(ctx: Context, name: str) -> str:
    return labels.condition_label(name, _locale(ctx))


@pass_context
def _unmet(ctx: Context, item: Mapping[str, Any]) -> str:
    return labels.describe_unmet(item["condition"], item["have"], item["need"], _locale(ctx))


@pass_context
def _ask(ctx: Context, condition: str, needs: Mapping[str, Figure]) -> str:
    return labels.describe_ask(condition, needs.get(condition), _locale(ctx))


@pass_context
def _date(ctx: Context, value: dt.date | str) -> str:
    return labels.format_date(value, _locale(ctx))


@pass_context
def _datetime(ctx: Context, value: dt.datetime | str) -> str:
    return labels.format_datetime(value, ctx["campaign"]["timezone"], _locale(ctx))


def make_environment(templates_dir: Path | None = None) -> Environment:
    """The one Jinja2 environment for notices: absolute loader path, HTML autoescaped, undefined names fail."""
    root = (templates_dir if templates_dir is not None else TEMPLATES_DIR).resolve()
    env = Environment(
        loader=FileSystemLoader(str(root)),
        # select_autoescape compares name endings, so "html.j2" is what makes `x.html.j2` escape.
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=StrictUndefined,
        # Plain-text mails are whitespace-sensitive; these keep `{% %}` lines from leaving blank lines behind.
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Templates ship with the code: no stat() of each template at every render (a tenth of a dispatch).
        auto_reload=False,
    )
    env.filters.update(
        phase_label=_phase_label,
        state_label=_state_label,
        rating_label=_rating_label,
        level_label=_level_label,
        level_role=_level_role,
        condition_label=_condition_label,
        unmet=_unmet,
        ask=_ask,
        date=_date,
        datetime=_datetime,
        number=labels.format_number,
    )
    # The order people read states in (the main path, then the side states), for tables that merge counts.
    env.globals["STATES"] = labels.STATES
    return env


# -- rendering ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedNotice:
    """A notice ready to send: a one-line subject, the plain-text body and the HTML body."""

    subject: str
    text: str
    html: str
    locale: Locale = labels.DEFAULT_LOCALE


def template_name(event: str, locale: Locale, channel: Literal["txt", "html"]) -> str:
    """Per-locale files: `notices/<locale>/<event>.<channel>.j2`."""
    return f"notices/{locale}/{event}.{channel}.j2"


def _render_block(template: Template, block: str, values: dict[str, Any]) -> str:
    try:
        render = template.blocks[block]
    except KeyError:
        raise ValueError(f"template {template.name} has no {{% block {block} %}}") from None
    return "".join(render(template.new_context(values)))


def render_notice(env: Environment, event: str, locale: str, context: Mapping[str, Any]) -> RenderedNotice:
    """Validate `context` for `event` and render its subject, text and HTML in `locale` (`zh-CN` or `en`).

    The subject is the `subject` block of the event's text template, so it is never HTML-escaped and lives
    beside the body that explains it.
    """
    if locale not in labels.LOCALES:
        raise ValueError(f"unknown locale {locale!r}; expected one of {', '.join(labels.LOCALES)}")
    loc: Locale = locale
    values: dict[str, Any] = validate_context(event, context).model_dump()
    values.update(locale=loc, event=event)
    text_template = env.get_template(template_name(event, loc, "txt"))
    # A subject is one header line: a name with a line break must not start a new header.
    subject = " ".join(_render_block(text_template, "subject", values).split())
    # One final newline, as a MIME text part has anyway, so what is rendered is exactly what is sent.
    text = text_template.render(values).rstrip("\n") + "\n"
    html = env.get_template(template_name(event, loc, "html")).render({**values, "subject": subject})
    html = html.rstrip("\n") + "\n"
    return RenderedNotice(subject=subject, text=text, html=html, locale=loc)
