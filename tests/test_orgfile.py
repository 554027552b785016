"""Tests for workflows.orgfile: the example files load, and bad files are refused with a line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pydantic
import pytest

from workflows.orgfile import (
    CatalogSpec,
    OrgFileError,
    OrgSpec,
    read_catalog,
    read_org,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DATA = Path(__file__).resolve().parent / "data"

# A small valid org file; tests append members or change lines of it.
SMALL_ORG = """\
district: {code: baiyun, name: 白云区}
towns:
  - code: zhongluotan
    name: 钟落潭镇
    kind: town
    villages:
      - {code: zhongluotan-liangtian, name: 良田村}
departments:
  - {code: water, name: 区水务局}
  - {code: urban-management, name: 区城管执法局}
offices:
  - {code: command-centre, name: 区指挥调度中心, kind: command_centre}
  - {code: supervision, name: 区纪委监委（督查室）, kind: supervision}
members:
  - {code: li-ming, name: 李明, role: caller, unit: zhongluotan-liangtian}
"""  # members start at line 15


@pytest.fixture(scope="module")
def org() -> OrgSpec:
    return read_org(EXAMPLES / "org.yaml")


@pytest.fixture(scope="module")
def catalog(org: OrgSpec) -> CatalogSpec:
    return read_catalog(EXAMPLES / "catalog.yaml", org)


def write(tmp_path: Path, text: str, name: str = "file.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def refused_org(path: Path) -> OrgFileError:
    with pytest.raises(OrgFileError) as info:
        read_org(path)
    return info.value


def refused_catalog(path: Path, org: OrgSpec) -> OrgFileError:
    with pytest.raises(OrgFileError) as info:
        read_catalog(path, org)
    return info.value


# ----------------------------------------------------------------- the examples


def test_example_org_is_baiyun(org: OrgSpec) -> None:
    assert (org.district.code, org.district.name) == ("baiyun", "白云区")
    assert 18 <= len(org.towns) <= 24
    assert {t.kind for t in org.towns} == {"town", "street"}
    assert sum(t.kind == "town" for t in org.towns) == 4
    assert all(2 <= len(t.villages) <= 4 for t in org.towns)
    assert len(org.departments) >= 10
    assert {o.kind for o in org.offices} == {"command_centre", "supervision"}


def test_example_org_members_cover_every_role(org: OrgSpec) -> None:
    roles = {m.role for m in org.members}
    assert roles == {"caller", "liaison", "head", "dispatcher", "supervisor", "admin"}
    locales = {m.locale for m in org.members}
    assert locales == {"zh_Hans", "zh_Hant", "en"}
    kinds = org.unit_kinds()
    liaison_depts = {m.unit for m in org.members if m.role == "liaison"}
    head_depts = {m.unit for m in org.members if m.role == "head"}
    assert liaison_depts == set(org.department_codes())  # every department can be reached
    assert head_depts <= liaison_depts
    assert all(kinds[d] == "department" for d in liaison_depts)
    assert any(m.telegram_id is not None for m in org.members)
    assert any(m.wecom_userid is not None for m in org.members)


def test_example_codes_are_ascii_and_names_chinese(org: OrgSpec) -> None:
    kinds = org.unit_kinds()
    assert len(kinds) == 1 + len(org.towns) + sum(len(t.villages) for t in org.towns) + len(
        org.departments
    ) + len(org.offices)  # no code collapsed: all unique
    assert all(code.isascii() for code in kinds)
    assert all(t.name.endswith(("镇", "街")) for t in org.towns)
    for town in org.towns:
        suffix = "村" if town.kind == "town" else "社区"
        assert all(v.name.endswith(suffix) for v in town.villages), town.name


def test_example_catalog(catalog: CatalogSpec, org: OrgSpec) -> None:
    assert [d.code for d in catalog.domains] == ["enforcement", "key-work", "emergency"]
    assert len(catalog.items) >= 15
    by_domain = {d.code: [i for i in catalog.items if i.domain == d.code] for d in catalog.domains}
    assert all(len(items) >= 4 for items in by_domain.values())
    assert any(item.joint for item in catalog.items)
    assert not next(i for i in catalog.items if i.code == "flood-waterlogging").joint
    illegal = next(i for i in catalog.items if i.code == "illegal-construction")
    assert (illegal.lead, illegal.assisting) == ("urban-management", ("planning",))
    assert illegal.limits.resolve == "10wd"
    departments = org.department_codes()
    for item in catalog.items:
        assert item.lead in departments
        assert set(item.assisting) <= departments


def test_example_emergency_domain(catalog: CatalogSpec) -> None:
    emergency = catalog.domain("emergency")
    assert emergency.emergency
    assert emergency.escalation.quiet_hours is None
    assert emergency.escalation.supervise_after == "30m"
    assert catalog.domain("enforcement").escalation.quiet_hours == "22:00-07:00"
    assert not catalog.domain("key-work").emergency
    with pytest.raises(KeyError):
        catalog.domain("nope")


def test_models_are_frozen(org: OrgSpec) -> None:
    with pytest.raises(pydantic.ValidationError):
        org.members[0].role = "admin"


# ----------------------------------------------------------------- bad files in tests/data


@pytest.mark.parametrize(
    ("name", "line", "field", "fragment"),
    [
        ("bad_org_unknown_key.yaml", 20, "members[1].phone", "unknown key 'phone'"),
        ("bad_org_duplicate_code.yaml", 9, "towns[0].villages[1].code", "duplicate code"),
        ("bad_org_unknown_unit.yaml", 18, "members[3].unit", "unknown unit 'foo'"),
        ("bad_org_bad_role.yaml", 18, "members[1].role", "'boss'"),
        ("bad_org_role_unit.yaml", 16, "members[1].unit", "must belong to a department"),
        ("bad_org_duplicate_key.yaml", 7, "towns[0].name", "duplicate key 'name'"),
    ],
)
def test_bad_org_files(name: str, line: int, field: str, fragment: str) -> None:
    path = DATA / name
    error = refused_org(path)
    assert str(error).startswith(f"{path} line {line}: {field}: ")
    assert fragment in str(error)
    assert (error.line, error.field, error.file) == (line, field, path)


def test_yaml_syntax_error_names_the_line() -> None:
    path = DATA / "bad_org_syntax.yaml"
    error = refused_org(path)
    assert str(error).startswith(f"{path} line 9: invalid YAML: ")
    assert "line 8" in str(error)  # where the unclosed mapping starts
    assert error.line == 9


@pytest.mark.parametrize(
    ("name", "line", "field", "fragment"),
    [
        ("bad_catalog_limit.yaml", 15, "items[0].limits.resolve", "'5 days'"),
        ("bad_catalog_lead.yaml", 15, "items[1].lead", "is a town, not a department"),
        ("bad_catalog_assisting.yaml", 12, "items[0].assisting[1]", "unknown department 'metro'"),
        ("bad_catalog_unknown_domain.yaml", 8, "items[0].domain", "unknown domain 'emergencies'"),
        ("bad_catalog_quiet_hours.yaml", 8, "domains[0].escalation.quiet_hours", "HH:MM-HH:MM"),
        ("bad_catalog_limit_order.yaml", 14, "items[0].limits.resolve", "shorter than acknowledge"),
    ],
)
def test_bad_catalog_files(org: OrgSpec, name: str, line: int, field: str, fragment: str) -> None:
    path = DATA / name
    error = refused_catalog(path, org)
    assert str(error) == f"{path} line {line}: {field}: {error.problems[0].message}"
    assert fragment in str(error)
    assert len(error.problems) == 1


def test_every_bad_file_is_refused(org: OrgSpec) -> None:
    names = sorted(p.name for p in DATA.glob("bad_*.yaml"))
    assert len(names) >= 6
    for name in names:
        with pytest.raises(OrgFileError):
            if name.startswith("bad_catalog"):
                read_catalog(DATA / name, org)
            else:
                read_org(DATA / name)


# ----------------------------------------------------------------- inline cases


def test_small_org_loads(tmp_path: Path) -> None:
    org = read_org(write(tmp_path, SMALL_ORG))
    member = org.members[0]
    assert (member.locale, member.telegram_id, member.wecom_userid) == ("zh_Hans", None, None)
    assert org.unit_kinds()["zhongluotan-liangtian"] == "village"


def test_missing_key_falls_back_to_the_parent_line(tmp_path: Path) -> None:
    member = "  - code: zhang-wei\n    role: caller\n    unit: zhongluotan\n"
    path = write(tmp_path, SMALL_ORG + member)
    error = refused_org(path)
    assert str(error) == f"{path} line 16: members[1].name: missing required key 'name'"


def test_dispatcher_and_supervisor_need_their_offices(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SMALL_ORG
        + "  - {code: zheng-yu, name: 郑宇, role: dispatcher, unit: supervision}\n"
        + "  - {code: xu-qing, name: 许青, role: supervisor, unit: water}\n"
        + "  - {code: he-wenbin, name: 何文斌, role: caller, unit: water}\n"
        + "  - {code: tang-ke, name: 唐可, role: admin, unit: baiyun}\n",
    )
    error = refused_org(path)
    assert [(p.line, p.field) for p in error.problems] == [
        (16, "members[1].unit"),
        (17, "members[2].unit"),
        (18, "members[3].unit"),
    ]
    assert "dispatcher must belong to the command centre office" in str(error)
    assert "'supervision' is a supervision" in str(error)
    assert "caller must belong to a town/street or a village/community" in str(error)


def test_all_problems_are_reported_in_line_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SMALL_ORG
        + "  - {code: li-ming, name: 李明, role: caller, unit: zhongluotan}\n"
        + "  - {code: x, name: X, role: caller, unit: nowhere, telegram_id: 5}\n"
        + "  - {code: y, name: Y, role: caller, unit: zhongluotan, telegram_id: 5}\n",
    )
    error = refused_org(path)
    lines = str(error).splitlines()
    assert lines == [
        f"{path} line 16: members[1].code: duplicate code 'li-ming' "
        "(already used by members[0].code at line 15)",
        f"{path} line 17: members[2].unit: unknown unit 'nowhere'",
        f"{path} line 18: members[3].telegram_id: duplicate telegram_id '5' "
        "(already used by members[2].telegram_id at line 17)",
    ]


def test_shape_errors_from_pydantic(tmp_path: Path) -> None:
    text = SMALL_ORG.replace("kind: town", "kind: village").replace(
        "role: caller,", "role: caller, locale: fr,"
    )
    path = write(tmp_path, text + "  - {code: Bad Code, name: 坏, role: admin, unit: water}\n")
    error = refused_org(path)
    assert [(p.line, p.field) for p in error.problems] == [
        (5, "towns[0].kind"),
        (15, "members[0].locale"),
        (16, "members[1].code"),
    ]
    assert "(got 'fr')" in str(error)
    assert "'Bad Code' is not a code" in str(error)


def test_exactly_one_office_of_each_kind(tmp_path: Path) -> None:
    text = SMALL_ORG.replace("kind: supervision", "kind: command_centre")
    error = refused_org(write(tmp_path, text))
    assert error.line == 11 and error.field == "offices"
    assert "exactly one office of kind 'command_centre', found 2" in str(error)
    assert "exactly one office of kind 'supervision', found 0" in str(error)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("", 1, "the file is empty"),
        ("# only a comment\n", 1, "the file is empty"),
        ("- just\n- a list\n", 1, "expected a mapping"),
        ("district: {code: baiyun, name: 白云区}\n---\nmore: 1\n", 2, "invalid YAML"),
        ("district: [unclosed\n", 2, "invalid YAML"),
    ],
)
def test_unusable_documents(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    error = refused_org(write(tmp_path, text))
    assert error.line == line
    assert fragment in str(error)


def test_unreadable_file(tmp_path: Path) -> None:
    error = refused_org(tmp_path / "missing.yaml")
    assert error.line is None and "cannot read" in str(error)
    assert isinstance(error, ValueError)


@pytest.fixture
def small_org(tmp_path: Path) -> OrgSpec:
    return read_org(write(tmp_path, SMALL_ORG, "org.yaml"))


def test_catalog_defaults_and_limit_spellings(tmp_path: Path, small_org: OrgSpec) -> None:
    path = write(
        tmp_path,
        """\
        domains:
          - {code: emergency, name: 应急处置, emergency: true}
          - code: enforcement
            name: 综合执法
            escalation: {quiet_hours: "23:00 - 06:30"}
        items:
          - code: flood
            domain: emergency
            name: 内涝积水抢险
            lead: water
            limits: {acknowledge: 15m, respond: " 1 h ", resolve: 8h}
        """,
    )
    catalog = read_catalog(path, small_org)
    emergency, enforcement = catalog.domains
    assert (emergency.escalation.supervise_after, emergency.escalation.quiet_hours) == ("30m", None)
    assert enforcement.escalation.supervise_after == "1wd"
    assert enforcement.escalation.accountability_after == "3wd"
    assert enforcement.escalation.quiet_hours == "23:00-06:30"
    assert catalog.items[0].limits.respond == "1 h"
    assert catalog.items[0].assisting == ()


def test_catalog_cross_references(tmp_path: Path, small_org: OrgSpec) -> None:
    path = write(
        tmp_path,
        """\
        domains:
          - code: enforcement
            name: 综合执法
            escalation: {supervise_after: 3wd, accountability_after: 1wd, quiet_hours: none}
        items:
          - code: a
            domain: enforcement
            name: 甲
            lead: command-centre
            assisting: [water, water, supervision]
            limits: {acknowledge: 2wd, respond: 1wd, resolve: 3wd}
        """,
    )
    error = refused_catalog(path, small_org)
    found = [(p.line, p.field, p.message) for p in error.problems]
    assert found == [
        (
            4,
            "domains[0].escalation.accountability_after",
            "accountability_after limit '1wd' is shorter than supervise_after limit '3wd'",
        ),
        (9, "items[0].lead", "'command-centre' is an office, not a department"),
        (10, "items[0].assisting[1]", "'water' is listed twice"),
        (10, "items[0].assisting[2]", "'supervision' is an office, not a department"),
        (
            11,
            "items[0].limits.respond",
            "respond limit '1wd' is shorter than acknowledge limit '2wd'",
        ),
    ]


def test_zero_limit_is_refused(tmp_path: Path, small_org: OrgSpec) -> None:
    path = write(
        tmp_path,
        """\
        domains: [{code: emergency, name: 应急处置, emergency: true}]
        items:
          - {code: a, domain: emergency, name: 甲, lead: water,
             limits: {acknowledge: 0m, respond: 1h, resolve: 2h}}
        """,
    )
    error = refused_catalog(path, small_org)
    assert str(error) == f"{path} line 4: items[0].limits.acknowledge: limit must be positive: '0m'"


def test_catalog_duplicates_and_lead_assisting(tmp_path: Path, small_org: OrgSpec) -> None:
    path = write(
        tmp_path,
        """\
        domains:
          - {code: enforcement, name: 综合执法}
        items:
          - {code: a, domain: enforcement, name: 甲, lead: water, limits: {acknowledge: 1wd, respond: 1wd, resolve: 1wd}}
          - {code: a, domain: enforcement, name: 乙, lead: water, assisting: [water], limits: {acknowledge: 1wd, respond: 1wd, resolve: 1wd}}
        """,  # noqa: E501
    )
    error = refused_catalog(path, small_org)
    assert [(p.line, p.field) for p in error.problems] == [
        (5, "items[1].code"),
        (5, "items[1].assisting[0]"),
    ]
    assert "the lead department" in str(error)
