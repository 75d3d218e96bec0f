"""Notice texts (zh-CN by default, English available): which obligation, which subject, the due
date, the citation, what to do, and for escalations who is behind."""
from __future__ import annotations

from scheduler.policy import PlannedNotice

TEMPLATES = {
    "zh": {
        "reminder": "【到期提醒】{title}\n对象:{subject}({period})\n截止日期:{due}(还剩{step}天)\n依据:{document} {clause}\n请在截止日期前完成并在系统中报告。\n{explanation}",
        "overdue": "【逾期通知】{title}\n对象:{subject}({period})\n截止日期:{due},目前状态:{status_word}\n依据:{document} {clause}\n请尽快履行并报告;逾期情况已记录在案。\n{explanation}",
        "escalated": "【逾期上报】{title}\n逾期单位:{behind};对象:{subject}({period})\n截止日期:{due},目前状态:{status_word}\n依据:{document} {clause}\n请督促其整改落实。\n{explanation}",
    },
    "en": {
        "reminder": "[Reminder] {title}\nSubject: {subject} ({period})\nDue: {due} ({step} days left)\nBasis: {document} {clause}\nPlease fulfil it before the due date and report it.\n{explanation}",
        "overdue": "[Overdue] {title}\nSubject: {subject} ({period})\nDue: {due}; status: {status_word}\nBasis: {document} {clause}\nPlease fulfil it and report as soon as possible; the delay is on record.\n{explanation}",
        "escalated": "[Escalation] {title}\nBehind: {behind}; subject: {subject} ({period})\nDue: {due}; status: {status_word}\nBasis: {document} {clause}\nPlease follow up.\n{explanation}",
    },
}
STATUS_WORDS = {"zh": {"open": "未到期", "overdue": "已逾期", "breached": "未履行(不可补正)"},
                "en": {"open": "open", "overdue": "overdue", "breached": "breached"}}


def render(p: PlannedNotice, lang: str = "zh") -> str:
    kind = "escalated" if p.escalated_to else p.kind
    return TEMPLATES[lang][kind].format(
        title=p.title, subject=p.subject, period=p.period, due=p.due, step=p.step,
        document=p.citation.get("document", ""), clause=p.citation.get("clause", ""),
        status_word=STATUS_WORDS[lang].get(p.status, p.status), behind=p.recipient,
        explanation=p.explanation if lang == "zh" else "")
