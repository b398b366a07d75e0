"""Output for people: the organisation's words (states/labels.py) in the chosen language, times in the campaign's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from states import labels
from states.errors import BadInput
from states.labels import Figure, Locale


def say(lang: Locale, zh: str, en: str) -> str:
    """One sentence in both languages, side by side where it is written, so neither drifts from the other."""
    return zh if lang == "zh-CN" else en


def state(name: str | None, lang: Locale) -> str:
    if not name:
        return "—"
    return labels.STATE_LABELS[name][lang] if name in labels.STATE_LABELS else name


def stage(name: str, lang: Locale) -> str:
    """A phase, or the campaign's `not_started` / `ended`."""
    return labels.STAGE_LABELS[name][lang] if name in labels.STAGE_LABELS else name


def when(instant: dt.datetime | str | None, timezone: str, lang: Locale) -> str:
    """An instant as the campaign's local date and time ("2024年5月1日 09:00")."""
    if instant is None or instant == "":
        return "—"
    return labels.format_datetime(instant, timezone, lang)


def day(value: dt.date | str, lang: Locale) -> str:
    return labels.format_date(value, lang)


def condition(name: str, lang: Locale) -> str:
    try:
        return labels.condition_label(name, lang)
    except KeyError:
        return name


def condition_ids(words: str, lang: Locale) -> tuple[str, ...]:
    """The conditions a person names as they read them ("学时", "study hours") or by id ("study_hours"); a word
    two conditions share names both. Unknown words are refused with every condition's words and id."""
    from states.stuck import known_conditions

    wanted = words.strip().casefold()
    found = tuple(
        name for name in known_conditions()
        if wanted in {name, *(condition(name, other).casefold() for other in labels.LOCALES)}
    )
    if not found:
        known = {lg: say(lg, "、", ", ").join(f"{condition(n, lg)} ({n})" for n in known_conditions()) for lg in labels.LOCALES}
        raise BadInput(zh=f"没有条件叫“{words}”；可用：{known['zh-CN']}",
                       en=f"no condition is called {words!r}; one of: {known['en']}")
    return found


def unmet(item: Mapping[str, Any], lang: Locale) -> str:
    """One unmet condition in words and figures: "学时 46/50", "剖析报告：未提交"."""
    have: Figure = item.get("have")
    need: Figure = item.get("need")
    try:
        return labels.describe_unmet(item["condition"], have, need, lang)
    except KeyError:
        # A condition without words yet (a new one) still shows its figures rather than failing the command.
        return f"{item['condition']}: {labels.format_value(have, lang)}/{labels.format_value(need, lang)}"


def unmet_list(items: Iterable[Mapping[str, Any]], lang: Locale) -> str:
    return say(lang, "；", "; ").join(unmet(item, lang) for item in items)


def members(n: int, lang: Locale) -> str:
    return say(lang, f"{n} 名党员", f"{n} member" + ("" if n == 1 else "s"))


def branches(n: int, lang: Locale) -> str:
    return say(lang, f"{n} 个党支部", f"{n} branch" + ("" if n == 1 else "es"))


def counts(by_state: Mapping[str, int], lang: Locale) -> str:
    """"教育学习 150，分析评议 25" — states in the machine's order, as `status --json` lists them."""
    if not by_state:
        return say(lang, "无", "none")
    return say(lang, "，", ", ").join(f"{state(s, lang)} {n}" for s, n in by_state.items())


def yes_no(flag: bool, yes: tuple[str, str], no: tuple[str, str], lang: Locale) -> str:
    """A flag in words of its own ("已批准"/"未批准"), never Python's `True`/`None`."""
    zh, en = yes if flag else no
    return say(lang, zh, en)


# -- status and explain ----------------------------------------------------------------------------------------


def summary(data: Mapping[str, Any], at: dt.datetime, timezone: str, lang: Locale) -> str:
    stuck = data["stuck"]
    return "\n".join([
        say(lang, f"{data['campaign']}：当前阶段 {stage(data['phase'], lang)}（{when(at, timezone, lang)}）",
            f"{data['campaign']}: phase {stage(data['phase'], lang)} (at {when(at, timezone, lang)})"),
        say(lang, "  党员：", "  members: ") + counts(data["members"], lang),
        say(lang, "  党支部：", "  branches: ") + counts(data["branches"], lang),
        say(lang, "  滞留：", "  stuck: ") + say(lang, "，", ", ").join(
            [members(stuck["members"], lang), branches(stuck["branches"], lang)]
        ),
    ])


def _stuck_mark(view: Mapping[str, Any], lang: Locale) -> str:
    return say(lang, " — 已滞留（本阶段已截止）", "  — STUCK (its phase's deadline has passed)") if view.get("stuck") else ""


def _appraisal(a: Mapping[str, Any], timezone: str, lang: Locale) -> str:
    rating = labels.rating_label(a["rating"], lang) if a.get("rating") in labels.RATING_LABELS else a.get("rating")
    parts = [
        say(lang, f"评定结果 {rating or '未评定'}", f"rating {rating or 'not yet rated'}"),
        yes_no(a["approved"], ("已批准", "approved"), ("未批准", "not approved"), lang),
    ]
    if a.get("publicity_ends") and not a.get("final"):
        parts.append(say(lang, f"公示至 {when(a['publicity_ends'], timezone, lang)}",
                         f"publicity until {when(a['publicity_ends'], timezone, lang)}"))
    parts.append(yes_no(a["final"], ("已最终确定", "final"), ("尚未最终确定", "not final"), lang))
    if a.get("objection_pending"):
        parts.append(say(lang, "有异议待处理", "an objection is pending"))
    if a.get("excellent"):
        parts.append(say(lang, "优秀共产党员", "selected as excellent"))
    if a.get("withdrawal_confirmed"):
        parts.append(say(lang, "支部已确认脱党", "withdrawal confirmed by the branch"))
    return say(lang, "  评议：", "  appraisal: ") + say(lang, "，", ", ").join(parts)


def _people(people: list[Mapping[str, str]], roles: list[str], lang: Locale) -> str:
    if not roles:
        return say(lang, "系统按时自动办理", "the system, on time")
    if not people:
        return say(lang, "、", ", ").join(labels.role_label(r, lang) for r in roles)
    return say(lang, "、", ", ").join(f"{labels.role_label(p['role'], lang)} {p['name']}（{p['member_id']}）"
                                      if lang == "zh-CN" else
                                      f"{labels.role_label(p['role'], lang)} {p['name']} ({p['member_id']})"
                                      for p in people)


def member(view: Mapping[str, Any], timezone: str, lang: Locale) -> str:
    """`explain` / `status --member`: state, since when, what is still needed, why evidence does not count, what
    comes next and who takes it."""
    lines = [
        say(lang,
            f"{view['member_id']} {view['name']}（党支部 {view['branch_id']}）：{state(view['state'], lang)}",
            f"{view['member_id']} {view['name']} (branch {view['branch_id']}): {state(view['state'], lang)}")
        + _stuck_mark(view, lang)
    ]
    if view.get("since"):
        lines.append(say(lang, f"  自 {when(view['since'], timezone, lang)} 起",
                         f"  since {when(view['since'], timezone, lang)}"))
    if view.get("prior_state"):
        lines.append(say(lang, f"  此前所处：{state(view['prior_state'], lang)}",
                         f"  returns to: {state(view['prior_state'], lang)}"))
    lines += _next_step(view, lang)
    for item in view.get("uncounted", []):
        lines.append("  " + labels.describe_uncounted(item["condition"], item["reason"], item["count"], item["day"], lang))
    if "appraisal" in view:
        lines.append(_appraisal(view["appraisal"], timezone, lang))
    if "disposition" in view:
        lines.append(say(lang, "  组织处置：", "  organisational disposition: ")
                     + yes_no(view["disposition"] == "recorded", ("已记录", "recorded"), ("待处理", "pending"), lang))
    steps = view.get("next_steps") or []
    if steps:
        lines.append(say(lang, "  下一步：", "  next steps:"))
        for step in steps:
            act = labels.describe_act(step["act"], lang, view.get("prior_state"))
            who = _people(step.get("people", []), step.get("by", []), lang)
            lines.append(say(lang, f"    {act}（办理：{who}）", f"    {act} (by: {who})"))
    elif view.get("state") in ("completed", "withdrawn") or (view.get("state") == "disqualified" and not steps):
        lines.append(say(lang, "  已结束，无需再办理", "  finished: nothing more to do"))
    return "\n".join(lines)


def _next_step(view: Mapping[str, Any], lang: Locale) -> list[str]:
    """What a member or a branch still needs to move on, or that it needs nothing more."""
    if not view.get("next"):
        return []
    target = state(view["next"], lang)
    if not view["unmet"]:
        return [say(lang, f"  转入{target}的条件均已满足", f"  every condition for {target} holds")]
    return [say(lang, f"  转入{target}仍需：", f"  to move on to {target}, still needed:")] + [
        f"    {unmet(item, lang)}" for item in view["unmet"]
    ]


def branch(view: Mapping[str, Any], name: str | None, lang: Locale) -> str:
    """`status --branch`: the branch's state, its own unmet conditions, its members per state."""
    title = f"{view['branch_id']} {name}" if name else view["branch_id"]
    lines = [
        say(lang, f"党支部 {title}：{state(view['state'], lang)}", f"branch {title}: {state(view['state'], lang)}")
        + _stuck_mark(view, lang)
    ]
    lines += _next_step(view, lang)
    lines.append(say(lang, "  党员：", "  members: ") + counts(view.get("members", {}), lang))
    lines.append(say(lang, f"  滞留党员：{view.get('stuck_members', 0)} 名",
                     f"  stuck members: {view.get('stuck_members', 0)}"))
    return "\n".join(lines)


# -- decisions -------------------------------------------------------------------------------------------------


def sweep(data: Mapping[str, Any], dry_run: bool, lang: Locale) -> str:
    fired = [say(lang, "活动开始", "the start") if f == "start" else say(lang, f"{stage(f, lang)}阶段截止",
             f"the {stage(f, lang)} deadline") for f in data["fired"]]
    lead = say(lang, "试运行（未作任何更改）：", "dry run (nothing changed): ") if dry_run else ""
    advanced, stuck = data["advanced"], data["stuck"]
    sep = say(lang, "，", ", ")
    return "\n".join([
        lead + say(lang, "触发：", "fired: ") + (say(lang, "、", ", ").join(fired) or say(lang, "无", "nothing")),
        say(lang, "推进：", "advanced: ") + sep.join([members(advanced["members"], lang), branches(advanced["branches"], lang)]),
        say(lang, "滞留：", "stuck: ") + sep.join([members(stuck["members"], lang), branches(stuck["branches"], lang)]),
    ])


def retry(data: Mapping[str, Any], lang: Locale) -> str:
    moved = data["moved"]
    lines = [say(lang, "推进：", "moved: ") + say(lang, "，", ", ").join(
        [members(moved["members"], lang), branches(moved["branches"], lang)])]
    for subject, (before, after) in data["advanced"].items():
        lines.append(f"  {subject}{say(lang, '：', ': ')}{state(before, lang)} → {state(after, lang)}")
    for subject, held in data["held"].items():
        line = f"  {subject}{say(lang, '：仍处于', ': still ')}{state(held['state'], lang)}"
        if "why" in held:
            line += say(lang, "（未滞留：本阶段尚未截止）", " (not stuck: its phase's deadline has not passed)")
        if held.get("unmet"):
            line += say(lang, f"（{unmet_list(held['unmet'], lang)}）", f" ({unmet_list(held['unmet'], lang)})")
        lines.append(line)
    return "\n".join(lines)


# -- the log ---------------------------------------------------------------------------------------------------


def audit_line(entry: Mapping[str, Any], timezone: str, lang: Locale) -> str:
    """One entry of the log: local time, subject, the move in the organisation's words, why, who, the reason."""
    subject = entry.get("member_id") or entry.get("branch_id") or "-"
    before, after = entry.get("from"), entry.get("to")
    move = f"{state(before, lang)} → {state(after, lang)}" if before != after else (state(after, lang) if after else "")
    cause = labels.cause_label(entry.get("cause") or "", lang)
    # When the decision's time T and the real time it was written differ (a campaign driven with --at), say both.
    recorded = entry.get("recorded_at")
    written = ""
    if recorded and when(recorded, timezone, lang) != when(entry["at"], timezone, lang):
        written = say(lang, f"（记录于 {when(recorded, timezone, lang)}）", f" (recorded {when(recorded, timezone, lang)})")
    return (
        f"{when(entry['at'], timezone, lang)}{written}  {subject:<10} {move:<24} {cause:<12} "
        f"{entry.get('actor') or ''}  {entry.get('reason') or ''}"
    ).rstrip()


# -- who is stuck ----------------------------------------------------------------------------------------------


def stuck(
    entries: list[Mapping[str, Any]], key: str, at: dt.datetime, timezone: str, lang: Locale, *, since_changed: bool = False
) -> str:
    """The secretary's to-do list: branch by branch, the branch's own gaps first, then each member's. At a past T
    after which things changed (`since_changed`), a note says whose states the list takes and where the past is."""
    n_members = sum(1 for e in entries if e["member_id"] is not None)
    n_branches = len(entries) - n_members
    lines = [say(lang, f"{key} 截至 {when(at, timezone, lang)} 滞留：", f"{key}, stuck at {when(at, timezone, lang)}: ")
             + say(lang, "，", ", ").join([members(n_members, lang), branches(n_branches, lang)])]
    if since_changed:
        lines.append(say(
            lang,
            "（注意：此后已有变动。本清单按各人现在所处的阶段和截至当时的记录列出；当时的完整情况见 campaign report --at）",
            "(Note: things have changed since. This list takes everyone's present state with the records up to then; "
            "campaign report --at shows how things stood then.)",
        ))
    current: str | None = None
    for entry in entries:
        if entry["branch_id"] != current:
            current = entry["branch_id"]
            lines.append("")
            named = f" {entry['branch_name']}" if entry.get("branch_name") else ""
            lines.append(say(lang, f"党支部 {current}{named}", f"branch {current}{named}"))
        since = when(entry["since"], timezone, lang)
        gaps = unmet_list(entry["unmet"], lang) or say(lang, "条件已满足，待重新检查（campaign retry）",
                                                     "conditions now hold: retry to move on (campaign retry)")
        if entry["member_id"] is None:
            lines.append(say(lang, f"  支部本身：{state(entry['state'], lang)}，自 {since} 起 — {gaps}",
                             f"  the branch itself: {state(entry['state'], lang)} since {since} — {gaps}"))
        else:
            lines.append(say(lang, f"  {entry['member_id']} {entry.get('name') or ''}：{state(entry['state'], lang)}，自 {since} 起 — {gaps}",
                             f"  {entry['member_id']} {entry.get('name') or ''}: {state(entry['state'], lang)} since {since} — {gaps}"))
    return "\n".join(lines)


def stuck_header(lang: Locale) -> list[str]:
    if lang == "zh-CN":
        return ["党支部", "党员编号", "姓名", "所处阶段", "起始时间", "未满足条件"]
    return ["branch", "member", "name", "state", "since", "still needed"]


def stuck_rows(entries: list[Mapping[str, Any]], timezone: str, lang: Locale) -> list[list[str]]:
    """One row per stuck member or branch (a branch's own row has no member), for CSV and spreadsheets."""
    return [
        [
            entry["branch_id"],
            entry["member_id"] or "",
            entry.get("name") or "",
            state(entry["state"], lang),
            when(entry["since"], timezone, lang),
            unmet_list(entry["unmet"], lang),
        ]
        for entry in entries
    ]


def campaigns(entries: list[Mapping[str, Any]], lang: Locale) -> str:
    if not entries:
        return say(lang, "尚无活动（campaign plan load 载入方案）", "no campaigns yet (campaign plan load)")
    return "\n".join(
        say(lang, f"{e['campaign']}  {e['title']}  当前阶段：{stage(e['phase'], lang)}  {members(e['members'], lang)}",
            f"{e['campaign']}  {e['title']}  phase: {stage(e['phase'], lang)}  {members(e['members'], lang)}")
        for e in entries
    )
