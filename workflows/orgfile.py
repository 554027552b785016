"""The organisation file and the call catalog, read and checked.

Two YAML files describe a district to youhu (see ``examples/``):

* the **org file** — the district, its towns and streets (镇街) with their
  villages and communities (村社), the district departments (区直部门), the
  district's offices (the command centre and the supervision office), and the
  members who use the bot;
* the **catalog** (有呼必应专项清单) — the domains with their escalation
  ladders, and the items a call can be raised about, each with a lead
  department, optional assisting departments (a joint call) and three limits.

`read_org` and `read_catalog` turn them into plain frozen pydantic models; they
touch no database (the DB loader consumes these models). Whoever writes the
files — an admin — gets every fault at once, each naming the file, the 1-based
line and the field path, e.g.::

    examples/org.yaml line 42: members[3].unit: unknown unit 'foo'

Unknown keys are errors, so a misspelt optional key is never silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import ErrorDetails

from workflows.deadlines import Limit

__all__ = [
    "CatalogSpec",
    "Department",
    "District",
    "Domain",
    "Escalation",
    "Item",
    "Limits",
    "Member",
    "Office",
    "OrgFileError",
    "OrgSpec",
    "Problem",
    "Town",
    "Village",
    "read_catalog",
    "read_org",
]

#: A path into a YAML document: mapping keys and sequence indexes (pydantic's ``loc``).
Loc = tuple[str | int, ...]

Role = Literal["caller", "liaison", "head", "dispatcher", "supervisor", "admin"]
Locale = Literal["zh_Hans", "zh_Hant", "en"]
TownKind = Literal["town", "street"]
OfficeKind = Literal["command_centre", "supervision"]
#: What a unit code names in the org file.
UnitKind = Literal["district", "town", "street", "village", "department", "office"]


# --------------------------------------------------------------------------- errors


@dataclass(frozen=True)
class Problem:
    """One fault in a file: the 1-based line (None if unknown), the field path and what is wrong."""

    line: int | None
    field: str
    message: str

    def render(self, file: Path) -> str:
        """The problem as one line of text, e.g. ``org.yaml line 4: towns[0].kind: ...``."""
        where = f"{file} line {self.line}" if self.line is not None else str(file)
        what = f"{self.field}: {self.message}" if self.field else self.message
        return f"{where}: {what}"


class OrgFileError(ValueError):
    """An org or catalog file that youhu cannot use.

    The message has one line per problem, sorted by line number; `line` and
    `field` are those of the first problem, `problems` holds them all.
    """

    def __init__(self, file: Path, problems: Sequence[Problem]) -> None:
        self.file = file
        self.problems: tuple[Problem, ...] = tuple(
            sorted(problems, key=lambda p: (p.line is None, p.line or 0))
        )
        first = self.problems[0] if self.problems else Problem(None, "", "invalid file")
        self.line = first.line
        self.field = first.field
        super().__init__("\n".join(p.render(file) for p in self.problems or (first,)))


def _format_loc(loc: Loc) -> str:
    """``("members", 3, "unit")`` → ``members[3].unit``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# --------------------------------------------------------------------------- YAML with lines


class _LineLoader(yaml.SafeLoader):
    """A SafeLoader that also knows the line of every mapping key and sequence item.

    `record_lines` walks the composed node tree and records, for each path, the
    1-based line where that entry starts: the key's line for a mapping entry,
    the item's first line for a sequence item. Repeated keys in one mapping
    (which PyYAML would silently collapse) are collected in `duplicates`.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[Loc, int] = {}
        self.duplicates: list[tuple[Loc, int, int]] = []  # (path, line, first line)

    def record_lines(
        self, node: yaml.Node, loc: Loc = (), active: frozenset[int] = frozenset()
    ) -> None:
        """Record the lines of `node` (found at `loc`) and everything under it."""
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if id(node) in active:  # a recursive alias: &a [*a]
            return
        active = active | {id(node)}
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    continue
                key = str(key_node.value)
                line = key_node.start_mark.line + 1
                if key in seen:
                    self.duplicates.append(((*loc, key), line, seen[key]))
                    continue
                seen[key] = line
                self.lines[(*loc, key)] = line
                self.record_lines(value_node, (*loc, key), active)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.record_lines(item, (*loc, i), active)


def _line_of(lines: Mapping[Loc, int], loc: Loc) -> int | None:
    """The line of `loc`, or of its nearest ancestor that has one."""
    for n in range(len(loc), -1, -1):
        if loc[:n] in lines:
            return lines[loc[:n]]
    return None


def _load_yaml(file: Path) -> tuple[Any, dict[Loc, int]]:
    """The parsed document of `file` and the line of each path in it; OrgFileError if unreadable."""
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OrgFileError(file, [Problem(None, "", f"cannot read the file: {exc}")]) from exc
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise OrgFileError(file, [Problem(1, "", "the file is empty")])
        loader.record_lines(node)
        if loader.duplicates:
            raise OrgFileError(
                file,
                [
                    Problem(line, _format_loc(loc), f"duplicate key {loc[-1]!r} (first: line {n})")
                    for loc, line, n in loader.duplicates
                ],
            )
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = str(exc.problem or exc.context or "cannot parse")
        if exc.context and exc.problem:
            started = (
                f" that starts at line {exc.context_mark.line + 1}" if exc.context_mark else ""
            )
            detail += f" ({exc.context}{started})"
        problem = Problem(mark.line + 1 if mark else None, "", f"invalid YAML: {detail}")
        raise OrgFileError(file, [problem]) from exc
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise OrgFileError(file, [Problem(line, "", f"invalid YAML: {exc.reason}")]) from exc
    except yaml.YAMLError as exc:
        raise OrgFileError(file, [Problem(None, "", f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()
    return data, loader.lines


# --------------------------------------------------------------------------- field types

_CODE_RE = re.compile(r"^[a-z0-9]+(?:[-_][a-z0-9]+)*$")
_QUIET_RE = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")


def _check_code(value: str) -> str:
    if len(value) > 64 or not _CODE_RE.match(value):
        raise ValueError(
            f"{value!r} is not a code: use lowercase ASCII letters and digits, "
            "joined by '-' or '_' (at most 64 characters)"
        )
    return value


def _check_limit(value: str) -> str:
    Limit.parse(value)  # raises ValueError naming the text
    return value.strip()


def _check_quiet_hours(value: str | None) -> str | None:
    if value is None or value.strip().lower() == "none":
        return None
    text = value.replace(" ", "")
    if not _QUIET_RE.match(text):
        raise ValueError(f"quiet hours must be 'HH:MM-HH:MM' or none, got {value!r}")
    return text


#: A stable ASCII identifier such as ``zhongluotan-liangtian``.
Code = Annotated[str, AfterValidator(_check_code)]
#: A display name, e.g. 钟落潭镇.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
#: A limit such as "15m", "2h" or "1wd", as accepted by `workflows.deadlines.Limit.parse`.
LimitText = Annotated[str, AfterValidator(_check_limit)]
#: Local quiet hours "HH:MM-HH:MM" (may wrap midnight); None (written ``none``) for round the clock.
QuietHours = Annotated[str | None, AfterValidator(_check_quiet_hours)]


class _Spec(BaseModel):
    """Frozen, and unknown keys are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- org models


class District(_Spec):
    """The district (区) the bot serves; the root of the unit tree."""

    code: Code
    name: Name


class Village(_Spec):
    """A village (村) of a town or a community (社区) of a street."""

    code: Code
    name: Name


class Town(_Spec):
    """A town (镇) or street (街道) of the district, with its villages or communities."""

    code: Code
    name: Name
    kind: TownKind
    villages: tuple[Village, ...] = ()


class Department(_Spec):
    """A district department (区直部门) that towns may call."""

    code: Code
    name: Name


class Office(_Spec):
    """A district office: the command centre (dispatchers) or the supervision office."""

    code: Code
    name: Name
    kind: OfficeKind


class Member(_Spec):
    """A person who uses the bot, in one unit, reachable on Telegram, WeCom or both."""

    code: Code
    name: Name
    role: Role
    unit: Code
    locale: Locale = "zh_Hans"
    telegram_id: Annotated[int, Field(strict=True, gt=0)] | None = None
    wecom_userid: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)] | None = (
        None
    )


class OrgSpec(_Spec):
    """The org file: district → towns/streets → villages, departments, offices, members."""

    district: District
    towns: tuple[Town, ...]
    departments: tuple[Department, ...]
    offices: tuple[Office, ...]
    members: tuple[Member, ...] = ()

    def unit_kinds(self) -> dict[str, UnitKind]:
        """Each unit code and its kind: district, town, street, village, department, office."""
        kinds: dict[str, UnitKind] = {self.district.code: "district"}
        for town in self.towns:
            kinds[town.code] = town.kind
            kinds.update((village.code, "village") for village in town.villages)
        kinds.update((dept.code, "department") for dept in self.departments)
        kinds.update((office.code, "office") for office in self.offices)
        return kinds

    def department_codes(self) -> frozenset[str]:
        """The codes of the district departments."""
        return frozenset(dept.code for dept in self.departments)


# --------------------------------------------------------------------------- catalog models

#: The brief's default escalation ladders, used for keys a domain leaves out.
ROUTINE_ESCALATION: Mapping[str, str | None] = {
    "supervise_after": "1wd",
    "accountability_after": "3wd",
    "quiet_hours": "22:00-07:00",
}
EMERGENCY_ESCALATION: Mapping[str, str | None] = {
    "supervise_after": "30m",
    "accountability_after": "2h",
    "quiet_hours": None,
}


class Escalation(_Spec):
    """When a missed limit escalates to supervision (督办) and accountability (问责)."""

    supervise_after: LimitText
    accountability_after: LimitText
    quiet_hours: QuietHours


class Domain(_Spec):
    """A domain of the catalog (综合执法, 重点工作, 应急处置) and its escalation ladder.

    Escalation keys left out take the brief's defaults: 1wd / 3wd / 22:00-07:00,
    or 30m / 2h / none for an emergency domain.
    """

    code: Code
    name: Name
    emergency: bool = False
    escalation: Escalation

    @model_validator(mode="before")
    @classmethod
    def _default_escalation(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        defaults = EMERGENCY_ESCALATION if data.get("emergency") is True else ROUTINE_ESCALATION
        given = data.get("escalation", {})
        if not isinstance(given, dict):
            return data  # let the model report it
        return {**data, "escalation": {**defaults, **given}}


class Limits(_Spec):
    """How long a department may take to acknowledge (签收), respond (响应) and resolve (办结)."""

    acknowledge: LimitText
    respond: LimitText
    resolve: LimitText


AttributeType = Literal["string", "number", "datetime", "text", "singlevaluelist",
                        "multivaluelist"]


class AttributeValue(_Spec):
    """One choice of a list attribute: its key (what a system sends) and name."""

    key: Code
    name: Name


class Attribute(_Spec):
    """What another system sends with a call on this item (an Open311 service
    definition's attribute, e.g. which of the street-order violations a camera
    saw). `values` are the choices of a list attribute, and only of one."""

    code: Code
    description: Name
    datatype: AttributeType = "string"
    required: bool = False
    values: tuple[AttributeValue, ...] = ()

    @model_validator(mode="after")
    def _values_for_lists(self) -> Attribute:
        listed = self.datatype.endswith("valuelist")
        if listed and not self.values:
            raise ValueError(f"a {self.datatype} attribute needs values")
        if not listed and self.values:
            raise ValueError(f"a {self.datatype} attribute has no values")
        keys = [value.key for value in self.values]
        if len(set(keys)) != len(keys):
            raise ValueError("two values share a key")
        return self


class Item(_Spec):
    """A catalog item: what a call is about, who leads, who assists, its
    limits, the attributes other systems send with it (Open311), and the
    keywords callers' descriptions are matched on to suggest it."""

    code: Code
    domain: Code
    name: Name
    lead: Code
    assisting: tuple[Code, ...] = ()
    limits: Limits
    attributes: tuple[Attribute, ...] = ()
    keywords: tuple[Name, ...] = ()

    @model_validator(mode="after")
    def _distinct_attributes(self) -> Item:
        codes = [attribute.code for attribute in self.attributes]
        if len(set(codes)) != len(codes):
            raise ValueError("two attributes share a code")
        return self

    @property
    def joint(self) -> bool:
        """Whether a call on this item is a joint call (联合呼叫) with assisting departments."""
        return bool(self.assisting)


class CatalogSpec(_Spec):
    """The catalog file: domains and items."""

    domains: tuple[Domain, ...]
    items: tuple[Item, ...]

    def domain(self, code: str) -> Domain:
        """The domain with `code`; KeyError if there is none."""
        for domain in self.domains:
            if domain.code == code:
                return domain
        raise KeyError(code)


# --------------------------------------------------------------------------- validation

_M = TypeVar("_M", bound=BaseModel)

_TYPE_MESSAGES = {
    "model_type": "expected a mapping (key: value)",
    "model_attributes_type": "expected a mapping (key: value)",
    "dict_type": "expected a mapping (key: value)",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "string_type": "expected text",
}


def _describe(error: ErrorDetails) -> str:
    """A pydantic error as an admin would want to read it."""
    kind, loc, value = error["type"], error["loc"], error["input"]
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}"
    if kind == "missing":
        return f"missing required key {loc[-1]!r}"
    if kind == "value_error" and "ctx" in error:
        return str(error["ctx"]["error"])
    message = _TYPE_MESSAGES.get(kind, error["msg"])
    if isinstance(value, str | int | float | bool) or value is None:
        message += f" (got {value!r})"
    return message


def _validate(model: type[_M], data: Any, file: Path, lines: Mapping[Loc, int]) -> _M:
    """`data` as a `model`, or OrgFileError listing every fault with its line."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            Problem(_line_of(lines, err["loc"]), _format_loc(err["loc"]), _describe(err))
            for err in exc.errors(include_url=False)
        ]
        raise OrgFileError(file, problems) from None


class _Problems:
    """Cross-reference faults of one file, collected so that all are reported at once."""

    def __init__(self, file: Path, lines: Mapping[Loc, int]) -> None:
        self.file = file
        self.lines = lines
        self.found: list[Problem] = []

    def add(self, loc: Loc, message: str) -> None:
        self.found.append(Problem(_line_of(self.lines, loc), _format_loc(loc), message))

    def line(self, loc: Loc) -> int | None:
        return _line_of(self.lines, loc)

    def raise_if_any(self) -> None:
        if self.found:
            raise OrgFileError(self.file, self.found)


class _Codes:
    """One namespace of codes: reports a code used twice, naming where it was first used."""

    def __init__(self, problems: _Problems, what: str = "code") -> None:
        self.problems = problems
        self.what = what
        self.first: dict[str, Loc] = {}

    def claim(self, code: str, loc: Loc) -> None:
        if code in self.first:
            earlier = self.first[code]
            where = f"{_format_loc(earlier)} at line {self.problems.line(earlier)}"
            self.problems.add(loc, f"duplicate {self.what} {code!r} (already used by {where})")
        else:
            self.first[code] = loc


#: Which kinds of unit each role may belong to.
_ROLE_UNITS: Mapping[Role, tuple[frozenset[str], str]] = {
    "caller": (frozenset({"town", "street", "village"}), "a town/street or a village/community"),
    "liaison": (frozenset({"department"}), "a department"),
    "head": (frozenset({"department"}), "a department"),
    "dispatcher": (frozenset({"command_centre"}), "the command centre office"),
    "supervisor": (frozenset({"supervision"}), "the supervision office"),
}


def _check_org(org: OrgSpec, problems: _Problems) -> None:
    """Codes unique, exactly one office of each kind, members in units that fit their role."""
    for section in ("towns", "departments"):
        if not getattr(org, section):
            problems.add((section,), f"need at least one entry in {section}")
    units = _Codes(problems)
    units.claim(org.district.code, ("district", "code"))
    for t, town in enumerate(org.towns):
        units.claim(town.code, ("towns", t, "code"))
        for v, village in enumerate(town.villages):
            units.claim(village.code, ("towns", t, "villages", v, "code"))
    for d, dept in enumerate(org.departments):
        units.claim(dept.code, ("departments", d, "code"))
    for o, office in enumerate(org.offices):
        units.claim(office.code, ("offices", o, "code"))

    for kind in ("command_centre", "supervision"):
        count = sum(office.kind == kind for office in org.offices)
        if count != 1:
            problems.add(("offices",), f"need exactly one office of kind {kind!r}, found {count}")

    kinds: dict[str, str] = dict(org.unit_kinds())
    kinds.update((office.code, office.kind) for office in org.offices)  # offices by their kind

    members = _Codes(problems)
    telegram = _Codes(problems, "telegram_id")
    wecom = _Codes(problems, "wecom_userid")
    for m, member in enumerate(org.members):
        members.claim(member.code, ("members", m, "code"))
        if member.telegram_id is not None:
            telegram.claim(str(member.telegram_id), ("members", m, "telegram_id"))
        if member.wecom_userid is not None:
            wecom.claim(member.wecom_userid, ("members", m, "wecom_userid"))
        unit_kind = kinds.get(member.unit)
        if unit_kind is None:
            problems.add(("members", m, "unit"), f"unknown unit {member.unit!r}")
            continue
        if member.role not in _ROLE_UNITS:
            continue  # an admin may belong to any unit
        allowed, wanted = _ROLE_UNITS[member.role]
        if unit_kind not in allowed:
            problems.add(
                ("members", m, "unit"),
                f"a {member.role} must belong to {wanted}, "
                f"but {member.unit!r} is {_a(unit_kind.replace('_', ' '))}",
            )


def _a(noun: str) -> str:
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def _not_shorter(
    problems: _Problems, loc: Loc, later: tuple[str, str], earlier: tuple[str, str]
) -> bool:
    """Report (and return False) if limit `later` is shorter than `earlier`, when comparable.

    Minutes and hours compare with each other; working days only with working
    days (how long a working day is depends on the calendar).
    """
    (later_name, later_text), (earlier_name, earlier_text) = later, earlier
    long, short = Limit.parse(later_text), Limit.parse(earlier_text)
    if long.unit is short.unit and long.amount < short.amount:
        problems.add(
            (*loc, later_name),
            f"{later_name} limit {later_text!r} is shorter than "
            f"{earlier_name} limit {earlier_text!r}",
        )
        return False
    return True


def _check_catalog(catalog: CatalogSpec, org: OrgSpec, problems: _Problems) -> None:
    """Codes unique, items in known domains, departments that exist, limits in order."""
    for section in ("domains", "items"):
        if not getattr(catalog, section):
            problems.add((section,), f"need at least one entry in {section}")
    domains = _Codes(problems)
    for d, domain in enumerate(catalog.domains):
        domains.claim(domain.code, ("domains", d, "code"))
        esc = domain.escalation
        _not_shorter(
            problems,
            ("domains", d, "escalation"),
            ("accountability_after", esc.accountability_after),
            ("supervise_after", esc.supervise_after),
        )

    domain_codes = {domain.code for domain in catalog.domains}
    kinds = org.unit_kinds()

    def check_department(code: str, loc: Loc) -> None:
        kind = kinds.get(code)
        if kind is None:
            problems.add(loc, f"unknown department {code!r}")
        elif kind != "department":
            problems.add(loc, f"{code!r} is {_a(kind)}, not a department")

    items = _Codes(problems)
    for i, item in enumerate(catalog.items):
        items.claim(item.code, ("items", i, "code"))
        if item.domain not in domain_codes:
            problems.add(("items", i, "domain"), f"unknown domain {item.domain!r}")
        check_department(item.lead, ("items", i, "lead"))
        seen: set[str] = set()
        for a, code in enumerate(item.assisting):
            loc: Loc = ("items", i, "assisting", a)
            if code == item.lead:
                problems.add(loc, f"{code!r} is the lead department; it cannot also assist")
            elif code in seen:
                problems.add(loc, f"{code!r} is listed twice")
            else:
                check_department(code, loc)
            seen.add(code)
        lim, lim_loc = item.limits, ("items", i, "limits")
        ack = ("acknowledge", lim.acknowledge)
        respond = ("respond", lim.respond)
        resolve = ("resolve", lim.resolve)
        # Report only the first disorder of an item: one mistake, one message.
        for later, earlier in ((resolve, ack), (respond, ack), (resolve, respond)):
            if not _not_shorter(problems, lim_loc, later, earlier):
                break


# --------------------------------------------------------------------------- API


def read_org(path: Path) -> OrgSpec:
    """The org file at `path`, checked; OrgFileError naming file, line and field otherwise.

    Called by the DB loader and the admin CLI when setting up or updating a district.
    """
    data, lines = _load_yaml(path)
    org = _validate(OrgSpec, data, path, lines)
    problems = _Problems(path, lines)
    _check_org(org, problems)
    problems.raise_if_any()
    return org


def read_catalog(path: Path, org: OrgSpec) -> CatalogSpec:
    """The catalog at `path`, checked against `org` (lead and assisting must be its departments).

    Raises OrgFileError naming the catalog file, line and field of every fault.
    """
    data, lines = _load_yaml(path)
    catalog = _validate(CatalogSpec, data, path, lines)
    problems = _Problems(path, lines)
    _check_catalog(catalog, org, problems)
    problems.raise_if_any()
    return catalog
