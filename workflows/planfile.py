"""The annual plan of inspections, assessments and data requests
(年度督查检查考核计划), read and checked like the org and catalog files.

A plan file (see ``examples/plan.yaml``) names a year and, per department,
the approved items with how many times a year each may be done::

    year: 2025
    departments:
      housing:
        - {code: self-built-housing, name: 农村自建房安全排查, kind: data_request, count: 4}

Every fault is reported at once with its line (`workflows.orgfile.OrgFileError`),
and nothing is written unless the whole file is good. Departments are
checked against the codes the caller knows (the org file given with it, or
the departments already in the database).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from workflows.orgfile import Code, Name, _Codes, _load_yaml, _Problems, _Spec, _validate

PlanKindText = Literal["data_request", "inspection", "assessment"]


class PlanEntry(_Spec):
    """One approved item: what it is and how many times a year."""

    code: Code
    name: Name
    kind: PlanKindText
    count: Annotated[int, Field(strict=True, ge=1, le=1000)]


class PlanSpec(_Spec):
    """The plan file: the year and each department's items."""

    year: Annotated[int, Field(strict=True, ge=2000, le=2100)]
    departments: dict[Code, tuple[PlanEntry, ...]]


def read_plan(path: Path, department_codes: Collection[str]) -> PlanSpec:
    """The plan at `path`, checked: known departments, item codes unique per
    department, at least one item in all. Raises OrgFileError listing every
    fault with its line."""
    data, lines = _load_yaml(path)
    plan = _validate(PlanSpec, data, path, lines)
    problems = _Problems(path, lines)
    if not any(plan.departments.values()):
        problems.add(("departments",), "need at least one plan item")
    for department, entries in plan.departments.items():
        if department not in department_codes:
            problems.add(("departments", department), f"unknown department {department!r}")
        codes = _Codes(problems, "plan item code")
        for i, entry in enumerate(entries):
            codes.claim(entry.code, ("departments", department, i, "code"))
    problems.raise_if_any()
    return plan
