"""Suggesting catalog items from a caller's description, on the example
catalog (examples/catalog.yaml) and with realistic descriptions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from workflows.context import Context
from workflows.directory import load
from workflows.matching import pieces, suggest
from workflows.orgfile import read_catalog, read_org

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def district(ctx: Context) -> Context:
    org = read_org(EXAMPLES / "org.yaml")
    load(ctx.engine, org, read_catalog(EXAMPLES / "catalog.yaml", org), datetime.now(UTC))
    return ctx


def names(ctx: Context, description: str) -> list[str]:
    return [s.name for s in suggest(ctx, description)]


@pytest.mark.parametrize(("description", "first"), [
    ("村口排水管堵塞，污水漫到路面", "市政排水管网堵塞"),
    ("雨下太大，地下车库积水已经到膝盖", "内涝积水抢险"),
    ("后山有山体滑坡迹象，泥土冲到民房后墙", "山体滑坡及地质灾害处置"),
    ("闻到很浓的燃气味，怀疑燃气泄漏", "燃气泄漏处置"),
    ("工业园一家工厂夜里偷排偷放废水，环境污染严重", "环境污染及偷排偷放查处"),
    ("有人在农田里搞违法建设，盖了两层铁皮房", "违法建设查处"),
    ("学校门口小摊贩多，周边环境脏乱", "学校周边环境整治"),
    ("十字路口道路塌陷出一个大坑", "道路塌陷抢险"),
    ("仓库堆放易燃物，存在消防安全隐患", "消防安全隐患整治"),
    # In the words callers use, not the catalog's (its keywords).
    ("菜市场门口一排小贩摆摊，人都过不去", "占道经营整治"),
    ("隔壁在私搭乱建，加建了一层", "违法建设查处"),
    ("楼道里电动车飞线充电，消防通道也被堵了", "消防安全隐患整治"),
    ("河边倒了很多渣土，泥头车半夜来", "非法采砂及余泥渣土乱倒查处"),
    ("街口的井盖在冒水，下水道堵了", "市政排水管网堵塞"),
    # A zh_Hant member writes Traditional characters: the ones both scripts
    # share match the names, the others the catalog's Traditional keywords.
    ("村口排水管堵塞，汙水漫到路面", "市政排水管网堵塞"),
    ("後山山體滑坡", "山体滑坡及地质灾害处置"),
    ("聞到很濃的燃氣味，懷疑洩漏", "燃气泄漏处置"),
    ("地下車庫積水，已經到膝蓋", "内涝积水抢险"),
    ("後巷有人擺攤，佔了半條路", "占道经营整治"),
    # An en member writes English: the catalog's English keywords.
    ("The drain at the village entrance is blocked", "市政排水管网堵塞"),
    ("Smell of gas near the market, maybe a leak", "燃气泄漏处置"),
    ("Street vendors block the pavement every evening", "占道经营整治"),
    ("The underpass is flooded after the storm", "内涝积水抢险"),
    # The values of an item's list attributes are its words too.
    ("沿街晾晒衣服，很不雅观", "占道经营整治"),
])
def test_the_likely_item_comes_first(district: Context, description: str, first: str) -> None:
    found = names(district, description)
    assert found and found[0] == first, found


def test_an_ambiguous_description_offers_each_likely_item(district: Context) -> None:
    """Waste water into a river: the river's item and the pollution item
    share the description's words; both are offered, whichever is first."""
    found = names(district, "工厂夜里偷排污水到河涌")
    assert set(found) == {"河涌整治", "环境污染及偷排偷放查处"}


def test_at_most_three_and_the_same_every_time(district: Context) -> None:
    description = "河涌边有人乱倒余泥渣土，还偷排污水，造成环境污染"
    found = names(district, description)
    assert 1 <= len(found) <= 3
    assert all(names(district, description) == found for _ in range(3))


@pytest.mark.parametrize("description", [
    "门口有人吵架", "请尽快处理", "？？？", "help, something is wrong", "",
])
def test_a_description_that_matches_nothing_suggests_nothing(district: Context,
                                                               description: str) -> None:
    assert suggest(district, description) == []


def test_a_domain_name_points_at_its_items(district: Context) -> None:
    found = names(district, "应急情况，需要处置")
    assert found and all(name in {"内涝积水抢险", "火灾及危化品事故处置", "山体滑坡及地质灾害处置",
                                  "燃气泄漏处置", "道路塌陷抢险", "疫情及突发公共卫生事件处置"}
                         for name in found)


def test_inactive_items_are_not_suggested(district: Context) -> None:
    from sqlmodel import Session, select

    from models import CatalogItem
    with Session(district.engine) as session:
        drain = session.exec(select(CatalogItem).where(
            CatalogItem.code == "drainage-blockage")).one()
        drain.active = False
        session.add(drain)
        session.commit()
    assert "市政排水管网堵塞" not in names(district, "村口排水管堵塞")


def test_pieces_are_pairs_of_characters_and_latin_words() -> None:
    assert pieces("排水管 堵塞") == {"排水", "水管", "堵塞"}
    assert pieces("Ｄrain blocked, 火") == {"drain", "block", "火"}
    assert pieces("drainage") == pieces("drains") == {"drain"}
