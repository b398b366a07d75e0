"""Notice rendering: every event in both locales from typed contexts, strictness, escaping and the built message."""

from __future__ import annotations

import email
import html as html_lib
import itertools
from email import policy
from pathlib import Path
from typing import Any

import jinja2
import pydantic
import pytest

from notices.contexts import CONTEXT_MODELS, EVENTS, validate_context
from notices.message import build_message, message_id
from notices.render import TEMPLATES_DIR, make_environment, render_notice, template_name
from states import labels

HOSTILE = "<script>alert(1)</script>"
FORMULA = "=cmd|' /C calc'!A0"

CAMPAIGN: dict[str, Any] = {
    "key": "sfao-2024",
    "title": "省外办保持共产党员先进性教育活动",
    "timezone": "Asia/Shanghai",
}
BRANCH: dict[str, Any] = {"branch_id": "B01", "name": "机关第一党支部"}
SECRETARY: dict[str, Any] = {
    "member_id": "S001",
    "name": "李秀英",
    "email": "li@example.org",
    "locale": "zh-CN",
}
MEMBER_UNMET: list[dict[str, Any]] = [
    {"condition": "study_hours", "have": 38, "need": 50},
    {"condition": "concentrated_days", "have": 2, "need": 3},
    {"condition": "study_check", "have": None, "need": "pass"},
    {"condition": "analysis_report", "have": 0, "need": 1},
    {"condition": "branch", "have": "study", "need": "analysis"},
]


def sample_contexts(
    name: str = "王建华", email_addr: str | None = "wang@example.org"
) -> dict[str, dict[str, Any]]:
    """One context per event, as the dispatcher passes them; `name` is the member's (and recipient's) name."""
    member = {"member_id": "M001", "name": name}
    base = {"recipient": {**member, "email": email_addr, "locale": "zh-CN"}, "campaign": CAMPAIGN}
    to_secretary = {**base, "recipient": SECRETARY}
    return {
        "phase_started": {
            **base,
            "member": member,
            "branch": BRANCH,
            "phase": "study",
            "deadline": "2024-04-30",
            "asks": ["study_hours", "concentrated_days", "study_check"],
            "needs": {"study_hours": 50, "concentrated_days": 3, "study_check": "pass"},
        },
        "deadline_reminder": {
            **base,
            "member": member,
            "branch": BRANCH,
            "phase": "study",
            "deadline": "2024-04-30",
            "days_before": 3,
            "unmet": MEMBER_UNMET,
        },
        "member_stuck": {
            **to_secretary,
            "member": member,
            "branch": BRANCH,
            "phase": "study",
            "deadline": "2024-04-30",
            "unmet": MEMBER_UNMET,
            "to_secretary": True,
        },
        "branch_escalation": {
            **base,
            "branch": {"branch_id": "B02", "name": f"{name}所在党支部"},
            "phase": "analysis",
            "deadline": "2024-05-31",
            "level": "direct",
            "days_stuck": 3,
            "unmet": [
                {"condition": "opinions_solicited", "have": 0, "need": 1},
                {"condition": "analysis_meeting", "have": 0, "need": 1},
            ],
            "stuck_members": 4,
        },
        "branch_reminder": {
            **to_secretary,
            "branch": {"branch_id": "B01", "name": f"{name}所在党支部"},
            "phase": "study",
            "deadline": "2024-04-30",
            "days_before": 7,
            "unmet": [
                {"condition": "mobilization_meeting", "have": 0, "need": 1},
                {"condition": "concentrated_training", "have": 1, "need": 3},
            ],
            "members_short": 5,
        },
        "approval_requested": {
            **base,
            "branch": BRANCH,
            "ballot_date": "2024-08-10",
            "rated_members": 12,
            "counts": {"qualified": 10, "basically_qualified": 1, "unqualified": 1},
            "codes": {"approve": "01234567", "reject": "76543210"},
        },
        "publicity_started": {
            **to_secretary,
            "branch": BRANCH,
            "publicity_ends": "2024-08-17T02:30:00+00:00",
            "ratings": [
                {"member_id": "M001", "name": name, "rating": "qualified"},
                {"member_id": "M002", "name": "陈静", "rating": "basically_qualified"},
            ],
        },
        "admonishment_due": {**base, "member": member, "branch": BRANCH, "to_secretary": False},
        "rating_final": {
            **base,
            "member": member,
            "branch": BRANCH,
            "rating": "qualified",
            "excellent": True,
        },
        "withdrawal_pending": {
            **base,
            "member": member,
            "branch": BRANCH,
            "deadline": "2024-08-15",
            "to_secretary": False,
        },
        "oath_ceremony": {
            **base,
            "branch": BRANCH,
            "member": member,
            "phase": "pledge",
            "deadline": "2024-08-31",
        },
        "daily_digest": {
            **base,
            "day": "2024-05-02",
            "phase": "analysis",
            "members": {"analysis": 150, "study": 20, "exempt": 3, "referred": 2},
            "branches": {"analysis": 7, "study": 1},
            "stuck": {"members": 20, "branches": 1},
            "lagging": [{"branch_id": "B03", "name": f"{name}的支部", "state": "study", "stuck_members": 6}],
        },
        "action_code": {
            **base,
            "purpose": "retry",
            "day": "2024-05-06",
            "request": {"members": ["M054"], "branches": ["B03"], "all_stuck": True, "reason": "学时已补齐"},
            "code": "00420042",
        },
    }


# Variants that take the other branch of a template's conditions, so every line is rendered at least once.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("phase_started", {"asks": [], "needs": {}}),
    ("member_stuck", {"to_secretary": False}),
    ("branch_escalation", {"days_stuck": 0, "unmet": [], "stuck_members": 0, "level": "specific"}),
    ("branch_reminder", {"unmet": []}),
    ("branch_reminder", {"members_short": 0}),
    ("branch_reminder", {"members_short": 1, "days_before": 1}),
    ("admonishment_due", {"to_secretary": True}),
    ("rating_final", {"rating": "basically_qualified", "excellent": False}),
    ("rating_final", {"rating": "unqualified", "excellent": False}),
    ("withdrawal_pending", {"to_secretary": True}),
    ("daily_digest", {"phase": "not_started", "lagging": []}),
    ("daily_digest", {"phase": "ended"}),
    ("approval_requested", {"codes": None}),
    ("action_code", {"request": {"members": [], "branches": [], "all_stuck": False, "reason": "x"}}),
]


@pytest.fixture(scope="module")
def env() -> jinja2.Environment:
    return make_environment()


# -- templates and contexts -----------------------------------------------------------------------------------


def test_every_event_has_a_model_a_sample_and_both_templates_in_both_locales() -> None:
    assert set(EVENTS) == set(sample_contexts())
    for event, locale, channel in itertools.product(EVENTS, labels.LOCALES, ("txt", "html")):
        assert (TEMPLATES_DIR / template_name(event, locale, channel)).is_file(), (event, locale, channel)


def test_no_template_without_an_event() -> None:
    for path in (TEMPLATES_DIR / "notices").rglob("*.j2"):
        if path.name.startswith("_"):
            continue
        event = path.name.split(".")[0]
        assert event in EVENTS, path
        assert path.parent.name in labels.LOCALES, path


@pytest.mark.parametrize(("event", "locale"), list(itertools.product(EVENTS, labels.LOCALES)))
def test_every_event_renders_in_both_locales(env: jinja2.Environment, event: str, locale: str) -> None:
    context = sample_contexts()[event]
    notice = render_notice(env, event, locale, context)
    assert notice.locale == locale
    assert notice.subject and "\n" not in notice.subject
    assert CAMPAIGN["title"] in notice.subject
    assert context["recipient"]["name"] in notice.text.splitlines()[0]
    assert context["recipient"]["name"] in notice.html
    assert f'<html lang="{locale}">' in notice.html
    assert f"<title>{html_lib.escape(notice.subject)}</title>" in notice.html
    for output in (notice.subject, notice.text, notice.html):
        assert "{{" not in output and "{%" not in output and "None" not in output
    assert "\n\n\n" not in notice.text
    # Chinese first: the zh-CN text is Chinese, the English one carries no Chinese of its own words.
    if locale == "zh-CN":
        assert "同志：" in notice.text
    else:
        assert notice.text.startswith("Dear ")


@pytest.mark.parametrize(("event", "overrides"), VARIANTS)
@pytest.mark.parametrize("locale", labels.LOCALES)
def test_conditional_variants_render(
    env: jinja2.Environment, event: str, overrides: dict[str, Any], locale: str
) -> None:
    notice = render_notice(env, event, locale, {**sample_contexts()[event], **overrides})
    assert notice.subject and notice.text and notice.html


def test_reminder_names_each_gap_with_figures(env: jinja2.Environment) -> None:
    context = sample_contexts()["deadline_reminder"]
    zh = render_notice(env, "deadline_reminder", "zh-CN", context).text
    en = render_notice(env, "deadline_reminder", "en", context).text
    for line in (
        "学时 38/50",
        "集中学习培训天数 2/3",
        "学习培训成果检查：未通过",
        "剖析报告：未提交",
        "2024年4月30日",
    ):
        assert line in zh
    for line in ("study hours 38 of 50", "self-analysis report: not submitted", "30 April 2024", "3 days"):
        assert line in en


def test_branch_reminder_names_the_branchs_gaps_and_its_members_short(env: jinja2.Environment) -> None:
    context = sample_contexts()["branch_reminder"]
    zh = render_notice(env, "branch_reminder", "zh-CN", context)
    en = render_notice(env, "branch_reminder", "en", context)
    assert zh.text.startswith("李秀英同志：")
    assert "7天" in zh.subject and "王建华所在党支部" in zh.subject and "5名党员" in zh.subject
    for line in ("动员大会：未召开", "集中学习培训天数 1/3", "5名党员", "2024年4月30日"):
        assert line in zh.text, line
    assert "5 members still short" in en.subject and "30 April 2024" in en.text
    done = render_notice(env, "branch_reminder", "zh-CN", {**context, "unmet": []})
    assert "支部本阶段的工作已经完成" in done.text and "尚未完成的工作" not in done.text
    alone = render_notice(env, "branch_reminder", "zh-CN", {**context, "members_short": 0})
    assert "名党员" not in alone.subject and "名党员未达到" not in alone.text


def test_phase_started_says_what_the_phase_asks_with_numbers(env: jinja2.Environment) -> None:
    text = render_notice(env, "phase_started", "zh-CN", sample_contexts()["phase_started"]).text
    assert "教育学习阶段" in text
    assert "学习培训累计不少于50学时" in text
    assert "其中集中学习培训不少于3天" in text


def test_escalation_names_the_level_and_its_role(env: jinja2.Environment) -> None:
    notice = render_notice(env, "branch_escalation", "zh-CN", sample_contexts()["branch_escalation"])
    assert "直接责任人" in notice.subject
    assert "机关党委书记" in notice.text
    assert "征求意见：未开展" in notice.text and "4名党员" in notice.text


def test_secretary_and_member_wording_differ(env: jinja2.Environment) -> None:
    context = sample_contexts()["member_stuck"]
    to_secretary = render_notice(env, "member_stuck", "zh-CN", context)
    to_member = render_notice(env, "member_stuck", "zh-CN", {**context, "to_secretary": False})
    assert "督促" in to_secretary.text and "M001" in to_secretary.text
    assert "督促" not in to_member.text
    assert to_secretary.subject != to_member.subject


def test_ratings_and_counts_are_shown_never_votes(env: jinja2.Environment) -> None:
    approval = render_notice(env, "approval_requested", "zh-CN", sample_contexts()["approval_requested"])
    assert (
        "合格：10名" in approval.text and "基本合格：1名" in approval.text and "不合格：1名" in approval.text
    )
    publicity = render_notice(env, "publicity_started", "zh-CN", sample_contexts()["publicity_started"])
    assert "王建华（M001）：合格" in publicity.text and "陈静（M002）：基本合格" in publicity.text
    # A tally can never ride along: the contexts refuse fields they do not declare.
    with_votes = {**sample_contexts()["publicity_started"]}
    with_votes["ratings"] = [{"member_id": "M001", "name": "王建华", "rating": "qualified", "votes": 9}]
    with pytest.raises(pydantic.ValidationError):
        render_notice(env, "publicity_started", "zh-CN", with_votes)


def test_publicity_end_is_shown_in_the_campaigns_local_time(env: jinja2.Environment) -> None:
    context = sample_contexts()["publicity_started"]
    # 02:30 UTC is 10:30 in Asia/Shanghai; a time without offset is already local.
    assert "2024年8月17日 10:30" in render_notice(env, "publicity_started", "zh-CN", context).text
    naive = {**context, "publicity_ends": "2024-08-17T09:00:00"}
    assert "17 August 2024, 09:00" in render_notice(env, "publicity_started", "en", naive).text


def test_digest_lists_states_along_the_path_with_totals(env: jinja2.Environment) -> None:
    text = render_notice(env, "daily_digest", "zh-CN", sample_contexts()["daily_digest"]).text
    assert text.index("教育学习：20") < text.index("分析评议：150") < text.index("免予参加：3")
    assert "党员（共175名）" in text and "滞留：党员20名，党支部1个" in text
    empty = render_notice(
        env, "daily_digest", "en", {**sample_contexts()["daily_digest"], "lagging": []}
    ).text
    assert "Branches lagging behind:\n  none" in empty


# -- strictness -----------------------------------------------------------------------------------------------


def _broken_templates(root: Path, subject: str, body: str) -> Path:
    folder = root / "notices" / "zh-CN"
    folder.mkdir(parents=True)
    (folder / "admonishment_due.txt.j2").write_text(
        f"{{% block subject %}}{subject}{{% endblock %}}{body}", encoding="utf-8"
    )
    (folder / "admonishment_due.html.j2").write_text("<p>{{ member.name }}</p>", encoding="utf-8")
    return root


def test_an_undeclared_variable_fails_rendering(tmp_path: Path) -> None:
    env = make_environment(_broken_templates(tmp_path, "ok", "{{ recipient.name }} {{ no_such_variable }}"))
    with pytest.raises(jinja2.UndefinedError, match="no_such_variable"):
        render_notice(env, "admonishment_due", "zh-CN", sample_contexts()["admonishment_due"])


def test_an_undeclared_attribute_in_the_subject_fails_rendering(tmp_path: Path) -> None:
    env = make_environment(_broken_templates(tmp_path, "{{ member.nmae }}", "body"))
    with pytest.raises(jinja2.UndefinedError, match="nmae"):
        render_notice(env, "admonishment_due", "zh-CN", sample_contexts()["admonishment_due"])


def test_environment_loads_from_an_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = make_environment(Path("relative"))
    assert isinstance(env.loader, jinja2.FileSystemLoader)
    assert all(Path(entry).is_absolute() for entry in env.loader.searchpath)
    assert Path(make_environment().loader.searchpath[0]) == TEMPLATES_DIR  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("event", "change"),
    [
        ("phase_started", {"phase": "holiday"}),
        ("phase_started", {"asks": ["study_hour"]}),
        ("deadline_reminder", {"unmet": [{"condition": "no_such_condition", "have": 1, "need": 2}]}),
        ("deadline_reminder", {"days_before": -1}),
        ("branch_escalation", {"level": "zeroth"}),
        ("branch_reminder", {"members_short": -1}),
        ("branch_reminder", {"unmet": [{"condition": "no_such_condition", "have": 0, "need": 1}]}),
        ("rating_final", {"rating": "basically_qualified", "excellent": True}),
        ("daily_digest", {"members": {"asleep": 3}}),
        (
            "approval_requested",
            {"counts": {"qualified": 1, "basically_qualified": 0, "unqualified": 0, "votes": 7}},
        ),
        ("oath_ceremony", {"phase": "study"}),
        ("admonishment_due", {"campaign": {**CAMPAIGN, "timezone": "Mars/Olympus"}}),
    ],
)
def test_contexts_are_validated(event: str, change: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        validate_context(event, {**sample_contexts()[event], **change})


def test_a_missing_field_is_refused() -> None:
    context = dict(sample_contexts()["rating_final"])
    del context["excellent"]
    with pytest.raises(pydantic.ValidationError, match="excellent"):
        validate_context("rating_final", context)


def test_unknown_event_or_locale_is_refused(env: jinja2.Environment) -> None:
    with pytest.raises(ValueError, match="unknown notice event"):
        render_notice(env, "party_time", "zh-CN", {})
    with pytest.raises(ValueError, match="unknown locale"):
        render_notice(env, "rating_final", "fr", sample_contexts()["rating_final"])


def test_context_models_are_one_per_event() -> None:
    assert len(set(CONTEXT_MODELS.values())) == len(EVENTS)


# -- escaping -------------------------------------------------------------------------------------------------


def test_autoescape_is_chosen_by_the_double_suffix(env: jinja2.Environment) -> None:
    decide = env.autoescape
    assert callable(decide)
    assert decide("notices/zh-CN/rating_final.html.j2") is True
    assert decide("notices/zh-CN/rating_final.txt.j2") is False


@pytest.mark.parametrize(("event", "locale"), list(itertools.product(EVENTS, labels.LOCALES)))
def test_a_hostile_name_is_escaped_in_html_and_intact_in_text(
    env: jinja2.Environment, event: str, locale: str
) -> None:
    notice = render_notice(env, event, locale, sample_contexts(name=HOSTILE)[event])
    assert "<script>" not in notice.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in notice.html
    assert HOSTILE in notice.text
    assert "&lt;" not in notice.text and "&lt;" not in notice.subject


def test_a_formula_name_is_plain_text(env: jinja2.Environment) -> None:
    notice = render_notice(env, "rating_final", "zh-CN", sample_contexts(name=FORMULA)["rating_final"])
    assert FORMULA in notice.text
    assert FORMULA in html_lib.unescape(notice.html)
    parsed = _round_trip(
        build_message("k", "rating_final", "office@example.org", FORMULA, "m@example.org", notice)
    )
    assert FORMULA in parsed.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]


def test_a_line_break_in_a_name_cannot_forge_a_header(env: jinja2.Environment) -> None:
    context = sample_contexts(name="王建华\r\nBcc: victim@example.org")["member_stuck"]
    notice = render_notice(env, "member_stuck", "zh-CN", context)
    assert "Bcc: victim@example.org" in notice.subject
    assert "\n" not in notice.subject and "\r" not in notice.subject
    parsed = _round_trip(build_message("k", "member_stuck", "office@example.org", "李秀英", None, notice))
    assert parsed["Bcc"] is None


# -- the message ----------------------------------------------------------------------------------------------


def _round_trip(message: email.message.EmailMessage) -> email.message.EmailMessage:
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    assert isinstance(parsed, email.message.EmailMessage)
    return parsed


def test_message_is_multipart_alternative_utf8_with_campaign_headers(env: jinja2.Environment) -> None:
    notice = render_notice(env, "deadline_reminder", "zh-CN", sample_contexts()["deadline_reminder"])
    key = "M001:deadline_reminder:sfao-2024:study:3"
    message = build_message(
        key, "deadline_reminder", "先教办 <office@example.org>", "王建华", "wang@example.org", notice
    )
    parsed = _round_trip(message)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert all(part.get_content_charset() == "utf-8" for part in parts)
    assert parsed["Subject"] == notice.subject
    assert parsed["X-Campaign-Event"] == "deadline_reminder"
    assert parsed["X-Campaign-Key"] == key
    assert parsed["Message-ID"] == message_id(key)
    assert parsed["To"].addresses[0].addr_spec == "wang@example.org"
    assert parsed["To"].addresses[0].display_name == "王建华"
    assert parsed["From"].addresses[0].display_name == "先教办"
    assert parsed["Content-Language"] == "zh-CN"
    assert parts[0].get_content() == notice.text
    assert parts[1].get_content() == notice.html
    # RFC 2047: the Chinese subject travels as encoded words, not raw bytes.
    assert "=?utf-8?" in message.as_string()


def test_message_id_is_derived_from_the_key_only() -> None:
    assert message_id("a:b") == message_id("a:b")
    assert message_id("a:b") != message_id("a:c")
    assert message_id("a:b").startswith("<") and message_id("a:b").endswith("@campaign.local>")
    assert len(message_id("a:b")) == len("<@campaign.local>") + 32


def test_a_recipient_without_address_gets_a_named_empty_group(env: jinja2.Environment) -> None:
    notice = render_notice(env, "rating_final", "en", sample_contexts(email_addr=None)["rating_final"])
    parsed = _round_trip(build_message("k", "rating_final", "office@example.org", "王建华", None, notice))
    assert parsed["To"].addresses == ()
    assert parsed["To"].groups[0].display_name == "王建华"


# -- labels ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("table", "keys"),
    [
        (labels.PHASE_LABELS, labels.PHASES),
        (labels.STATE_LABELS, labels.STATES),
        (labels.RATING_LABELS, labels.RATINGS),
        (labels.LEVEL_LABELS, labels.LEVELS),
        (labels.LEVEL_ROLES, labels.LEVELS),
    ],
)
def test_every_label_exists_in_both_locales(table: labels.Labels, keys: tuple[str, ...]) -> None:
    assert set(table) == set(keys)
    for key, locale in itertools.product(keys, labels.LOCALES):
        assert table[key][locale]


def test_every_condition_has_words_in_both_locales() -> None:
    for words in labels.CONDITIONS.values():
        assert set(words.texts) == set(labels.LOCALES)
        for text in words.texts.values():
            assert text.label and text.missing and text.ask
            assert ("{n}" in text.ask) == words.counted


def test_the_organisations_terms_are_used() -> None:
    zh = {name: labels.condition_label(name, "zh-CN") for name in labels.CONDITIONS}
    assert zh["study_hours"] == "学时" and zh["analysis_report"] == "剖析报告"
    assert zh["satisfaction_evaluation"] == "满意度测评" and zh["heart_talk"] == "谈心交心"
    assert zh["pledge_application"] == "书面申请" and zh["followup"] == "诫勉谈话"
    assert [labels.phase_label(p, "zh-CN") for p in labels.PHASES] == [
        "教育学习",
        "分析评议",
        "整改建设",
        "巩固提高",
        "宣誓承诺",
    ]
    assert [labels.level_label(v, "zh-CN") for v in labels.LEVELS] == [
        "具体责任人",
        "直接责任人",
        "第二责任人",
        "第一责任人",
    ]


def test_labels_cover_every_condition_of_the_core() -> None:
    conditions = pytest.importorskip("states.conditions")
    assert {c.name for c in conditions.CONDITIONS} <= set(labels.CONDITIONS)


@pytest.mark.parametrize(
    ("condition", "have", "need", "zh", "en"),
    [
        ("study_hours", 38, 50, "学时 38/50", "study hours 38 of 50"),
        ("study_hours", 37.5, 50.0, "学时 37.5/50", "study hours 37.5 of 50"),
        ("study_hours", None, 50, "学时 0/50", "study hours 0 of 50"),
        ("concentrated_days", 0, 1, "集中学习培训天数 0/1", "concentrated training days 0 of 1"),
        ("analysis_report", 0, 1, "剖析报告：未提交", "self-analysis report: not submitted"),
        ("analysis_report", False, True, "剖析报告：未提交", "self-analysis report: not submitted"),
        ("heart_talk", None, 1, "谈心交心：未记录", "heart-to-heart talk: none recorded"),
        ("heart_talk", 1, 2, "谈心交心 1/2", "heart-to-heart talk 1 of 2"),
        (
            "study_check",
            "fail",
            "pass",
            "学习培训成果检查：未通过（要求：通过）",
            "check of learning results: failed (needs passed)",
        ),
        (
            "member_meeting_ballot",
            None,
            "rated",
            "党员大会无记名投票：未进行",
            "secret ballot of the member meeting: not held",
        ),
        (
            "qualified",
            "unqualified",
            "qualified|basically_qualified",
            "评定结果：不合格（要求：合格或基本合格）",
            "rating: unqualified (needs qualified or basically qualified)",
        ),
        ("followup", 0, 1, "诫勉谈话：未进行", "admonishment talk: not yet held"),
        (
            "branch",
            "study",
            "analysis",
            "所在党支部：尚处于教育学习，未转入分析评议",
            "your branch: still at study, not yet at analysis and appraisal",
        ),
        ("mobilization_meeting", 0, 1, "动员大会：未召开", "mobilisation meeting: not held"),
        ("concentrated_training", 2, 3, "集中学习培训天数 2/3", "concentrated training days 2 of 3"),
    ],
)
def test_unmet_items_read_as_people_say_them(condition: str, have: Any, need: Any, zh: str, en: str) -> None:
    assert labels.describe_unmet(condition, have, need, "zh-CN") == zh
    assert labels.describe_unmet(condition, have, need, "en") == en


def test_asks_carry_the_plans_figures() -> None:
    assert labels.describe_ask("study_hours", 40, "zh-CN") == "学习培训累计不少于40学时"
    assert labels.describe_ask("study_hours", None, "en") == "study hours"
    assert labels.describe_ask("heart_talk", 2, "zh-CN") == "谈心交心：不少于2"
    assert labels.describe_ask("oath", True, "en") == "take part in the collective renewal of the oath"


def test_an_unknown_label_names_what_is_missing() -> None:
    with pytest.raises(KeyError, match="no en label for phase 'holiday'"):
        labels.phase_label("holiday", "en")


def test_bodies_are_readable_8bit_utf8_unless_a_line_is_too_long(env: jinja2.Environment) -> None:
    short = render_notice(env, "rating_final", "zh-CN", sample_contexts()["rating_final"])
    long_name = "长" * 400  # 1,200 octets on one line: over RFC 5322's 998
    long = render_notice(env, "rating_final", "zh-CN", sample_contexts(name=long_name)["rating_final"])
    for notice, expected in ((short, "8bit"), (long, "quoted-printable")):
        message = build_message("k", "rating_final", "office@example.org", "王建华", "m@example.org", notice)
        parts = list(message.iter_parts())
        assert [part["Content-Transfer-Encoding"] for part in parts] == [expected, expected]
        assert [part.get_content() for part in _round_trip(message).iter_parts()] == [
            notice.text,
            notice.html,
        ]


def test_an_approval_request_carries_the_recipient_s_own_codes_and_an_action_code_its_request(
    env: jinja2.Environment,
) -> None:
    for locale in labels.LOCALES:
        approval = render_notice(env, "approval_requested", locale, sample_contexts()["approval_requested"])
        assert "01234567" in approval.text and "76543210" in approval.text and "M001" in approval.text
        assert "01234567" in approval.html and "76543210" in approval.html
        action = render_notice(env, "action_code", locale, sample_contexts()["action_code"])
        assert "00420042" in action.text and "M054" in action.text and "学时已补齐" in action.text
    with pytest.raises(pydantic.ValidationError):  # a code is 8 digits, nothing else
        validate_context("action_code", {**sample_contexts()["action_code"], "code": "1234"})
