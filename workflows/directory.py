"""Loading an org file and a catalog file into the database.

Both files are validated completely (`workflows.orgfile`) before anything is
written, and the load is one transaction: a bad file loads nothing. Loading is
an upsert by code, so running `youhu init` again with an edited file updates
names, limits and members in place; members missing from the file are kept
(deactivating people is an admin decision, not a side effect of a file).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, delete, select

from models import (
    CatalogItem,
    Domain,
    ItemAssistingDepartment,
    Locale,
    Member,
    Role,
    Unit,
    UnitKind,
    session_scope,
)
from workflows import accounts
from workflows.errors import InvalidInput
from workflows.orgfile import CatalogSpec, OrgSpec

Row = TypeVar("Row", Unit, Member, Domain, CatalogItem)


@dataclass(frozen=True)
class LoadSummary:
    units: int
    members: int
    domains: int
    items: int


def _upsert(session: Session, model: type[Row], code: str, **values: Any) -> Row:
    row = session.exec(select(model).where(model.code == code)).first()
    if row is None:
        row = model(code=code, **values)
    else:
        for name, value in values.items():
            setattr(row, name, value)
    session.add(row)
    session.flush()
    return row


def load(
    engine: Engine, org: OrgSpec, catalog: CatalogSpec | None, now: datetime
) -> LoadSummary:
    """Write `org` (and `catalog`, if given) to the database in one transaction."""
    with session_scope(engine) as session:
        ids: dict[str, int] = {}

        def unit(code: str, name: str, kind: UnitKind, parent: str | None) -> None:
            row = _upsert(session, Unit, code, name=name, kind=kind,
                          parent_id=ids[parent] if parent else None)
            ids[code] = row.id or 0

        unit(org.district.code, org.district.name, UnitKind.DISTRICT, None)
        for town in org.towns:
            unit(town.code, town.name, UnitKind(town.kind), org.district.code)
            for village in town.villages:
                unit(village.code, village.name, UnitKind.VILLAGE, town.code)
        for department in org.departments:
            unit(department.code, department.name, UnitKind.DEPARTMENT, org.district.code)
        for office in org.offices:
            unit(office.code, office.name, UnitKind(office.kind), org.district.code)
        for person in org.members:
            existing = session.exec(select(Member).where(Member.code == person.code)).first()
            member = _upsert(
                session, Member, person.code, name=person.name, role=Role(person.role),
                unit_id=ids[person.unit], locale=Locale(person.locale),
                created_at=existing.created_at if existing else now,
            )
            # An account the file names is bound; one it leaves out stays as
            # it is (bound by an invite, say).
            for channel, platform_id in ((accounts.TELEGRAM, person.telegram_id),
                                         (accounts.WECOM, person.wecom_userid)):
                if platform_id is None:
                    continue
                try:
                    accounts.bind(session, member.id or 0, channel, platform_id)
                except InvalidInput as error:
                    raise InvalidInput(f"member {person.code}: the {channel} account "
                                       f"{platform_id} is bound to another member",
                                       **error.params) from error
        domains = items = 0
        if catalog is not None:
            domain_ids: dict[str, int] = {}
            for domain in catalog.domains:
                row = _upsert(
                    session, Domain, domain.code, name=domain.name, emergency=domain.emergency,
                    supervise_after=domain.escalation.supervise_after,
                    accountability_after=domain.escalation.accountability_after,
                    quiet_hours=domain.escalation.quiet_hours,
                )
                domain_ids[domain.code] = row.id or 0
            for item in catalog.items:
                item_row = _upsert(
                    session, CatalogItem, item.code, domain_id=domain_ids[item.domain],
                    name=item.name, lead_department_id=ids[item.lead],
                    acknowledge_limit=item.limits.acknowledge,
                    respond_limit=item.limits.respond, resolve_limit=item.limits.resolve,
                    active=True,
                    attributes=[attribute.model_dump(mode="json")
                                for attribute in item.attributes] or None,
                    keywords=list(item.keywords) or None,
                )
                session.exec(delete(ItemAssistingDepartment).where(
                    col(ItemAssistingDepartment.item_id) == item_row.id))
                for code in item.assisting:
                    session.add(ItemAssistingDepartment(item_id=item_row.id or 0,
                                                        department_id=ids[code]))
            domains, items = len(catalog.domains), len(catalog.items)
        session.commit()
        return LoadSummary(units=len(ids), members=len(org.members), domains=domains, items=items)

