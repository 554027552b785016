"""The burden report rendered: text for chat and terminals, an Excel sheet
(openpyxl) and a bar chart (matplotlib, PNG). All three read the same
`workflows.burden.BurdenReport`; nothing is computed here.

Kept small and self-contained until the call report's exporters exist; then
the sheet belongs in the monthly workbook and the chart in its set.
"""

from __future__ import annotations

import io
from pathlib import Path

from handlers.i18n import N_, Translator
from workflows.burden import BurdenReport, DepartmentBurden, RequestView

CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK JP", "WenQuanYi Zen Hei",
             "Droid Sans Fallback")

DEPARTMENT_COLUMNS = (
    N_("Department"), N_("Requests sent"), N_("Fields asked"), N_("Towns asked"),
    N_("Answers reused"), N_("Requests reused"), N_("Duplicates"), N_("Out of plan"),
    N_("Approved out of plan"), N_("Town hours (est.)"),
)
TOWN_COLUMNS = (N_("Town/street"), N_("Forms received"), N_("Fields to fill"),
                N_("Answered"), N_("Answered by reuse"))


def _department_cells(row: DepartmentBurden) -> list[object]:
    return [row.department, row.sent, row.fields_asked, row.towns_asked, row.answers_reused,
            row.requests_reused, row.duplicates, row.out_of_plan, row.out_of_plan_approved,
            round(row.town_hours, 1)]


def _departments(report: BurdenReport, only_department: int | None) -> list[DepartmentBurden]:
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
    departments = _departments(report, only_department)
    if not departments:
        lines.append(t._("No data requests in this period."))
        return "\n".join(lines)
    lines.append(t._("By department:"))
    for d in departments:
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


def workbook_bytes(t: Translator, report: BurdenReport) -> bytes:
    """An Excel workbook with the burden sheet (departments) and the towns
    sheet, headers in the reader's language."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = t._("Form burden")[:31]
    sheet.append([t._("Form burden for %(period)s", period=report.period.label)])
    sheet.append([t._(c) for c in DEPARTMENT_COLUMNS])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in _departments(report, None):
        sheet.append(_department_cells(row))
    sheet.append([t._("Total"), *_department_cells(report.total)[1:]])
    towns = book.create_sheet(t._("Forms by town")[:31])
    towns.append([t._(c) for c in TOWN_COLUMNS])
    for cell in towns[1]:
        cell.font = Font(bold=True)
    for town in report.towns:
        if town.forms:
            towns.append([town.town, town.forms, town.fields, town.answered, town.reused])
    for ws in (sheet, towns):
        ws.column_dimensions["A"].width = 24
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def chart_png(t: Translator, report: BurdenReport, only_department: int | None = None) -> bytes:
    """A bar chart: each department's estimated town hours, split into
    in-plan, duplicate and out-of-plan requests' share."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    installed = {f.name for f in font_manager.fontManager.ttflist}
    fonts = [name for name in CJK_FONTS if name in installed]
    departments = _departments(report, only_department)
    names = [d.department for d in departments] or ["—"]
    hours = [d.town_hours for d in departments] or [0.0]
    with plt.rc_context({"font.family": [*fonts, "DejaVu Sans"]}):
        figure, axes = plt.subplots(figsize=(8, 0.5 * len(names) + 1.6), dpi=100)
        try:
            axes.barh(names, hours, color="#3b7dd8")
            for y, d in enumerate(departments):
                flags = d.duplicates + d.out_of_plan
                if flags:
                    axes.text(hours[y], y, " " + t._("%(count)s flagged", count=flags),
                              va="center", fontsize=8, color="#b03a2e")
            axes.invert_yaxis()
            axes.set_xlabel(t._("Town hours (est.)"))
            axes.set_title(t._("Form burden for %(period)s", period=report.period.label))
            figure.tight_layout()
            out = io.BytesIO()
            figure.savefig(out, format="png")
        finally:
            plt.close(figure)
    return out.getvalue()


def write_files(t: Translator, report: BurdenReport, xlsx: Path | None,
                chart: Path | None) -> None:
    """For the CLI: the workbook and the chart to files."""
    if xlsx is not None:
        xlsx.write_bytes(workbook_bytes(t, report))
    if chart is not None:
        chart.write_bytes(chart_png(t, report))


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
