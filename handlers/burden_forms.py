"""The form-burden watch in the chat's own terms: the burden report as text
(its workbook and chart are `bot.exports.burden`'s, from the same rows and
columns), and a request's answer sheet — the Excel form a town may fill in
and send back instead of answering field by field — written and read here.
Nothing is counted here: everything reads `workflows.burden`.
"""

from __future__ import annotations

import io

from handlers.i18n import N_, Translator
from workflows.burden import BurdenReport, DepartmentBurden, RequestView

DEPARTMENT_COLUMNS = (
    N_("Department"), N_("Requests sent"), N_("Fields asked"), N_("Towns asked"),
    N_("Answers reused"), N_("Requests reused"), N_("Duplicates"), N_("Out of plan"),
    N_("Approved out of plan"), N_("Town hours (est.)"),
)
TOWN_COLUMNS = (N_("Town/street"), N_("Forms received"), N_("Fields to fill"),
                N_("Answered"), N_("Answered by reuse"))


def department_cells(row: DepartmentBurden) -> list[object]:
    return [row.department, row.sent, row.fields_asked, row.towns_asked, row.answers_reused,
            row.requests_reused, row.duplicates, row.out_of_plan, row.out_of_plan_approved,
            round(row.town_hours, 1)]


def departments(report: BurdenReport, only_department: int | None) -> list[DepartmentBurden]:
    return [d for d in report.departments
            if (only_department is None or d.department_id == only_department)
            and (d.sent or d.requests_reused)]


def report_text(t: Translator, report: BurdenReport, only_department: int | None = None) -> str:
    """The report as chat text: totals, each department with requests, the
    towns that received forms."""
    total = report.total
    lines = [t._("Form burden for %(period)s", period=report.period.label)]
    if only_department is None:
        lines.append(t._("%(sent)s requests sent asking %(fields)s fields of %(towns)s towns "
                         "(about %(hours)s town hours at %(minutes)s minutes a field); "
                         "%(reused)s answers reused, %(avoided)s requests avoided by reuse, "
                         "%(duplicates)s duplicates, %(out)s out of plan.",
                         sent=total.sent, fields=total.fields_asked, towns=total.towns_asked,
                         hours=t.number(round(total.town_hours, 1)),
                         minutes=report.minutes_per_field, reused=total.answers_reused,
                         avoided=total.requests_reused, duplicates=total.duplicates,
                         out=total.out_of_plan))
    shown = departments(report, only_department)
    if not shown:
        lines.append(t._("No data requests in this period."))
        return "\n".join(lines)
    lines.append(t._("By department:"))
    for d in shown:
        lines.append(t._("%(department)s: %(sent)s sent, %(fields)s fields, %(towns)s towns, "
                         "%(reused)s answers reused, %(avoided)s reused instead of sent, "
                         "%(duplicates)s duplicates, %(out)s out of plan (%(approved)s "
                         "approved), %(hours)s town hours",
                         department=d.department, sent=d.sent, fields=d.fields_asked,
                         towns=d.towns_asked, reused=d.answers_reused,
                         avoided=d.requests_reused, duplicates=d.duplicates, out=d.out_of_plan,
                         approved=d.out_of_plan_approved,
                         hours=t.number(round(d.town_hours, 1))))
    if only_department is None:
        towns = [town for town in report.towns if town.forms]
        if towns:
            lines.append(t._("Forms received by town:"))
            lines += [t._("%(town)s: %(forms)s forms, %(fields)s fields, %(answered)s answered "
                          "(%(reused)s by reuse)", town=town.town, forms=town.forms,
                          fields=town.fields, answered=town.answered, reused=town.reused)
                      for town in towns]
    return "\n".join(lines)


# --------------------------------------------------------------------------- answer sheets

SHEET_MAX_UNCOMPRESSED = 20 * 1024 * 1024  # a town's sheet is a few kB; refuse zip bombs


def answer_sheet(t: Translator, view: RequestView) -> bytes:
    """The Excel sheet a town may fill in instead of answering field by
    field: the request's number and title, a row of field names, a row to
    fill (choices as a drop-down). Photo fields are asked in chat after."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = view.number[:31]
    sheet.append([f"{view.number} 「{view.title}」"])
    sheet.append([spec["name"] for spec in view.fields if spec["kind"] != "photo"])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    # Row 3 is the answer; the hint sits below it, out of the way.
    sheet.cell(row=5, column=1, value=t._("Fill in row 3 and send the sheet back in this "
                                          "chat."))
    column = 0
    for spec in view.fields:
        if spec["kind"] == "photo":
            continue
        column += 1
        if spec["kind"] == "choice":
            rule = DataValidation(type="list", formula1='"' + ",".join(spec["choices"]) + '"',
                                  allow_blank=False)
            sheet.add_data_validation(rule)
            rule.add(sheet.cell(row=3, column=column))
    book.properties.identifier = view.number
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def is_sheet(data: bytes) -> bool:
    """Whether `data` looks like an Excel workbook (a zip archive)."""
    return data[:4] == b"PK\x03\x04"


def read_answer_sheet(data: bytes, view: RequestView) -> dict[str, object] | None:
    """The values a town wrote in row 3 of the request's sheet, by field name
    (empty cells left out), or None when it is not that request's sheet.
    Values are checked by the workflow, not here."""
    import zipfile

    from openpyxl import load_workbook

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(i.file_size for i in archive.infolist()) > SHEET_MAX_UNCOMPRESSED:
                return None
        book = load_workbook(io.BytesIO(data), data_only=True)
    except Exception:  # not a workbook at all: the caller says so
        return None
    if book.properties.identifier != view.number:
        return None
    sheet = book.active
    if sheet is None:
        return None
    names = [str(c.value).strip() if c.value is not None else "" for c in sheet[2]]
    values = [c.value for c in sheet[3]]
    wanted = {spec["name"] for spec in view.fields if spec["kind"] != "photo"}
    found: dict[str, object] = {}
    for name, value in zip(names, values, strict=False):
        if name in wanted and value is not None and str(value).strip():
            found[name] = value.date().isoformat() if hasattr(value, "date") else value
    return found
