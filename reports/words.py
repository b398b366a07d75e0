"""The organisation's words a report needs that `states.labels` does not hold, and how a report writes times."""

from __future__ import annotations

import datetime as dt

from states import labels
from states.clock import as_utc
from states.labels import Locale

LOCALE: Locale = "zh-CN"


# Words labels.py does not hold (it names phases, states, conditions, ratings and levels): evidence kinds,
# roles, log causes and notice statuses. Unknown keys fall back to the identifier rather than failing a report.
KIND_LABELS: dict[str, str] = {
    "study_self": "个人自学",
    "study_concentrated": "集中学习培训（个人）",
    "study_check": "学习培训成果检查",
    "analysis_report": "剖析报告",
    "satisfaction_evaluation": "满意度测评",
    "heart_talk": "谈心交心",
    "rectification_plan": "个人整改方案",
    "good_deed": "好事实事",
    "pledge_application": "书面申请",
    "admonishment_talk": "诫勉谈话",
    "disposition": "组织处置",
    "oath": "重温入党誓词（个人）",
    "public_commitment": "公开承诺",
    "mobilization_meeting": "动员大会",
    "concentrated_training": "集中学习培训",
    "discussion_meeting": "保持先进性大讨论",
    "opinions_solicited": "征求意见",
    "analysis_meeting": "分析会",
    "branch_rectification_plan": "支部整改方案",
    "theme_activity": "转变机关作风主题活动",
    "oath_ceremony": "集中宣誓仪式",
    "member_meeting_ballot": "党员大会（民主评议）",
}
ROLE_LABELS: dict[str, str] = {
    "member": "党员",
    "branch_secretary": "党支部书记",
    "committee_secretary": "机关党委书记",
    "party_group_deputy": "党组副书记",
    "party_group_secretary": "党组书记",
    "office_director": "领导小组办公室主任",
    "inspector": "巡视组",
}
CAUSE_LABELS: dict[str, str] = {
    "sweep": "按期推进",
    "join": "加入活动",
    "retry": "重新核验",
    "exempt": "免予参加",
    "exempt_undo": "撤销免予参加",
    "refer": "移交处理",
    "resume": "恢复参加",
    "ballot": "党员大会评定",
    "approval": "上级党委批准",
    "approval_rejected": "上级党委退回",
    "excellent": "评为优秀共产党员",
    "objection": "公示期异议",
    "objection_upheld": "异议成立",
    "objection_dismissed": "异议不成立",
    "withdrawal_confirmed": "支部确认视为脱党",
    "withdrawal_rejected": "退回脱党确认",
    "withdrawal_approved": "批准除名",
    "accept_late": "接受补交书面申请",
    "transfer": "转接组织关系",
}
NOTICE_STATUS_LABELS: dict[str, str] = {
    "pending": "待发送",
    "sent": "已发送",
    "delivered": "已发送",
    "failed": "发送失败",
    "undeliverable": "无法投递",
}

# Kinds that are no condition of a phase's exit but belong to one: shown under it in the counts.
KIND_PHASE: dict[str, str] = {
    "study_self": "study",
    "study_concentrated": "study",
    "admonishment_talk": "consolidation",
    "disposition": "consolidation",
}


def word(table: dict[str, str], key: str) -> str:
    return table.get(key, key)


def kind_label(kind: str) -> str:
    return word(KIND_LABELS, kind)


def fmt_at(value: dt.datetime | None, tz: str) -> str:
    """An instant as people of the campaign read it, in its timezone; "" for none."""
    return labels.format_datetime(as_utc(value), tz, LOCALE) if value is not None else ""
