"""The names a report's columns, sheets and rows go by, marked for
translation: every renderer (text, Excel, chart, JSON's labels) looks them up
here, in the reader's language. Rows are keyed by codes; only these labels
and the formatting change with the locale."""

from __future__ import annotations

from handlers.i18n import N_

# The figures of a group (a department, a town, a domain, the district).
FIGURES: dict[str, str] = {
    "raised": N_("Raised"),
    "acknowledged": N_("Acknowledged"),
    "responded": N_("Responded"),
    "closed": N_("Closed"),
    "late": N_("Late"),
    "overdue": N_("Overdue now"),
    "supervised": N_("Supervision orders"),
    "referred": N_("Accountability referrals"),
    "response_rate": N_("Response rate"),
    "resolution_rate": N_("Resolution rate"),
    "satisfaction_rate": N_("Satisfaction rate"),
    "avg_hours_to_acknowledge": N_("Hours to acknowledge"),
    "avg_hours_to_respond": N_("Hours to respond"),
    "avg_hours_to_resolve": N_("Hours to resolve"),
}

# The evaluation of a department.
SCORE: dict[str, str] = {
    "rank": N_("Rank"),
    "rating": N_("Rating"),
    "performance": N_("Performance"),
    "deduction": N_("Deduction"),
    "score": N_("Score"),
}

GROUPS: dict[str, str] = {
    "department": N_("Department"),
    "town": N_("Town/street"),
    "domain": N_("Domain"),
    "district": N_("District"),
    "source": N_("Source"),
}

SHEETS: dict[str, str] = {
    "summary": N_("Summary"),
    "departments": N_("Departments"),
    "towns": N_("Towns"),
    "domains": N_("Domains"),
    "sources": N_("Sources"),
    "ledger": N_("Ledger"),
}

# One row per call (the 台账).
LEDGER: dict[str, str] = {
    "number": N_("Call number"),
    "item": N_("Item"),
    "domain": N_("Domain"),
    "town": N_("Town/street"),
    "unit": N_("Village/community"),
    "department": N_("Department"),
    "status": N_("Status"),
    "text": N_("Description"),
    "raised_at": N_("Raised at"),
    "dispatched_at": N_("Dispatched at"),
    "acknowledge_due": N_("Acknowledge by"),
    "acknowledged_at": N_("Acknowledged at"),
    "acknowledge_late": N_("Acknowledged late"),
    "respond_due": N_("Respond by"),
    "responded_at": N_("Responded at"),
    "respond_late": N_("Responded late"),
    "resolve_due": N_("Resolve by"),
    "resolved_at": N_("Resolved at"),
    "resolve_late": N_("Resolved late"),
    "closed_at": N_("Closed at"),
    "late_now": N_("Overdue now"),
    "supervision_number": N_("Supervision order"),
    "referred": N_("Accountability referral"),
    "rating": N_("Rating"),
    "rating_comment": N_("Rating comment"),
    "source": N_("Source"),
}

PERIOD = N_("Period")
AS_OF = N_("As of")
FIGURE = N_("Figure")
VALUE = N_("Value")
NO_DOMAIN = N_("No domain (not sure)")
NO_DEPARTMENT = N_("With the command centre")
YES = N_("yes")
NO = N_("no")
AUTO_CLOSED = N_("closed automatically")

# The chart.
CHART_RANKING = N_("Departments by score, %(period)s")
CHART_DAILY = N_("Calls raised and closed per day, %(period)s")
CHART_RAISED = N_("raised")
CHART_CLOSED = N_("closed")
CHART_NO_DATA = N_("No calls in this period")

# The text report's headings.
TITLE = N_("Report for %(period)s (as of %(as_of)s)")
DEPARTMENTS_HEADING = N_("Departments (score = half the towns' ratings, half performance, "
                         "less %(supervision)s points per supervision order and %(referral)s "
                         "more per accountability referral):")
QUIET_DEPARTMENTS = N_("No calls: %(names)s")
TOWNS_HEADING = N_("Towns/streets (villages included):")
DOMAINS_HEADING = N_("Domains:")
SOURCES_HEADING = N_("Sources (chat, and the systems that raised calls over Open311):")
CHAT_SOURCE = N_("Chat (raised by cadres)")
TOTAL_HEADING = N_("District total:")
HEADLINE = N_("%(raised)s calls raised, %(closed)s answered and closed.")
