"""Which catalog items a caller's description is most likely about.

A caller who types "村口排水管堵塞，污水漫到路面" should be offered 市政排水管网堵塞
without picking a domain and then an item from lists. An item's words are
its name, the catalog's keywords for it (摆摊, 小贩; 違建; street vendor), the
names of the values of its list attributes (the street-order violations a
camera reports: 流动摊贩, 出店经营 …), and, weaker, its domain's name.
Chinese has no spaces to split words on, so the description and every
item's words are cut into overlapping two-character pieces (排水, 水管, 管堵
…); a Latin word counts by its first five letters (drain, drains and
drainage alike). An item scores the pieces it shares with
the description, each weighted by how few items have it (堵塞 names one
item, 处置 many: only the first tells them apart). Ties go to the closer
spelling (rapidfuzz's partial ratio of the name against the description),
then to catalog order, so the same description always gets the same
suggestions.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from rapidfuzz import fuzz
from sqlmodel import col, select

from models import CatalogItem, Domain, session_scope
from workflows.context import Context

#: How many items a caller is offered at most.
MAX_SUGGESTIONS = 3

# A domain's name counts for its items at this fraction of an item's own words:
# "应急" points at every emergency item, and at none of them in particular.
_DOMAIN_WEIGHT = 0.5

# Suggestions scoring below this fraction of the best one are left out: one
# stray shared piece should not put an item beside a clear match.
_RELATIVE_CUTOFF = 0.5

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")
_LATIN = re.compile(r"[a-z0-9]{3,}")
_STEM = 5  # letters of a Latin word compared: blocked ~ block, flooding ~ flood


@dataclass(frozen=True)
class Suggestion:
    """An item a description is likely about, and how strongly."""

    item_id: int
    name: str
    score: float


def pieces(text: str) -> frozenset[str]:
    """The pieces `text` is compared by: its two-character runs of Chinese
    (a lone character is too common to mean anything, unless it is all
    there is) and its Latin words of three letters or more, cut to their
    first five."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    found: set[str] = set()
    for run in _HAN.findall(folded):
        if len(run) == 1:
            found.add(run)
        found.update(run[i:i + 2] for i in range(len(run) - 1))
    found.update(word[:_STEM] for word in _LATIN.findall(folded))
    return frozenset(found)


def suggest(ctx: Context, description: str, limit: int = MAX_SUGGESTIONS) -> list[Suggestion]:
    """The active items `description` is most likely about, best first; empty
    when it shares nothing with any item (the caller picks from the lists)."""
    with session_scope(ctx.engine) as session:
        rows = list(session.exec(
            select(CatalogItem, Domain)
            .join(Domain, col(Domain.id) == col(CatalogItem.domain_id))
            .where(col(CatalogItem.active).is_(True))
            .order_by(col(CatalogItem.id))
        ))
    said = pieces(description)
    if not said or not rows:
        return []
    own = {item.id: frozenset().union(*(pieces(word) for word in _words(item)))
           for item, _ in rows}
    of_domain = {item.id: pieces(domain.name) - own[item.id] for item, domain in rows}
    # How many items each piece names: the rarer, the more it tells.
    spread = Counter(piece for item, _ in rows for piece in own[item.id] | of_domain[item.id])
    scored: list[tuple[float, float, int, CatalogItem]] = []
    for order, (item, _) in enumerate(rows):
        score = sum(1 / spread[p] for p in own[item.id] & said)
        score += _DOMAIN_WEIGHT * sum(1 / spread[p] for p in of_domain[item.id] & said)
        if score > 0:
            closeness = fuzz.partial_ratio(item.name, description)
            scored.append((score, closeness, order, item))
    if not scored:
        return []
    scored.sort(key=lambda row: (-row[0], -row[1], row[2]))
    best = scored[0][0]
    return [Suggestion(item.id or 0, item.name, score)
            for score, _, _, item in scored[:limit] if score >= best * _RELATIVE_CUTOFF]


def _words(item: CatalogItem) -> list[str]:
    """What `item` is about, in words: its name, its keywords, and the names
    of its list attributes' values."""
    values = [str(value.get("name", "")) for attribute in item.attributes or []
              for value in attribute.get("values", [])]
    return [item.name, *(item.keywords or []), *values]
