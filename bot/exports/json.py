"""The report as JSON for other systems: the figures per department, town,
domain and district, and the per-call facts, keyed by codes (names are
given beside them, untranslated). Rates are fractions or null; times are
ISO 8601 in UTC. `schema` names the shape, so a consumer can check it."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from workflows.stats import Figures, Report

SCHEMA = "youhu.report/1"


def _figures(figures: Figures) -> dict[str, Any]:
    data = asdict(figures)
    data.update(response_rate=figures.response_rate, resolution_rate=figures.resolution_rate,
                satisfaction_rate=figures.satisfaction_rate)
    return data


def report_data(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data."""
    weights = report.weights
    return {
        "schema": SCHEMA,
        "period": {"label": report.period.label, "start": report.period.start.isoformat(),
                   "end": report.period.end.isoformat()},
        "as_of": report.as_of.isoformat(),
        "district": report.district_name,
        "weights": asdict(weights),
        "total": _figures(report.total),
        "departments": [
            {"code": d.department_code, "name": d.department_name, "rank": d.rank,
             "rating": d.rating_score, "performance": d.performance_score,
             "deduction": d.deduction, "score": d.score, "figures": _figures(d.figures)}
            for d in report.departments
        ],
        "towns": [{"code": g.code, "name": g.name, "figures": _figures(g.figures)}
                  for g in report.towns],
        "domains": [{"code": g.code, "name": g.name or None, "figures": _figures(g.figures)}
                    for g in report.domains],
        # code null: raised in the chat; else the Open311 key that raised them
        "sources": [{"code": g.code, "figures": _figures(g.figures)} for g in report.sources],
        "calls": [fact.as_dict() for fact in report.facts],
    }


def report_json(report: Report) -> bytes:
    """The report as UTF-8 JSON (Chinese kept readable, not \\u-escaped)."""
    return json.dumps(report_data(report), ensure_ascii=False, indent=2).encode("utf-8")
