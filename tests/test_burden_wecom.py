"""The form-burden watch on WeCom: real encrypted callbacks to youhu's WeCom
channel, template cards for the choices. A department's liaison composes a
request to 人和镇, which has no town-level cadre, so its village cadre answers
for it; the liaison reads the answer."""

from __future__ import annotations

from sqlmodel import Session, col, select

from models import DataRequest, DataRequestTown
from tests.fakes.wecom_api import FakeWeCom
from tests.test_telegram import until
from tests.test_wecom import LIAISON, Harness, _fake, district, run, running, wecom, words
from workflows.context import Context

__all__ = ["_fake", "district", "wecom"]  # the fixtures, shared with the call tests

VILLAGE_CADRE = "HuangJianGuo"  # 黄建国 of 蚌湖村, 人和镇


def latest(ctx: Context) -> DataRequest | None:
    with Session(ctx.engine) as session:
        return session.exec(select(DataRequest).order_by(col(DataRequest.id).desc())).first()


def test_a_data_request_over_wecom(district: Context, wecom: FakeWeCom,
                                   unused_port: int) -> None:
    ctx = district

    async def text(h: Harness, user: str, content: str) -> None:
        mark = h.mark()
        await h.text(user, content)
        await h.answer(user, mark)

    async def press(h: Harness, user: str, pattern: str, since: int = 0) -> None:
        card, key = await h.card_with(user, since, pattern)
        mark = h.mark()
        await h.press(user, card, key)
        await h.answer(user, mark)

    async def scenario() -> None:
        async with running(ctx, wecom, unused_port) as h:
            await text(h, LIAISON, "/request")
            await text(h, LIAISON, "河道保洁情况统计")
            mark = h.mark()
            await h.text(LIAISON, "保洁人数")
            await press(h, LIAISON, ":knumber", mark)
            await press(h, LIAISON, ":done", mark)
            mark = h.mark()
            await h.text(LIAISON, "人和镇")
            await press(h, LIAISON, ":d2", mark)
            await press(h, LIAISON, ":none", mark)
            await press(h, LIAISON, ":ok", mark)
            await until(lambda: latest(ctx) is not None)
            request = latest(ctx)
            assert request is not None

            # The village cadre answers for the town: a card with the Answer button.
            notice, key = await h.card_with(VILLAGE_CADRE, 0, f"d:ans:{request.id}")
            assert "河道保洁情况统计" in words(notice) or request.number in words(notice)
            mark = h.mark()
            await h.press(VILLAGE_CADRE, notice, key)
            await h.answer(VILLAGE_CADRE, mark)
            mark = h.mark()
            await h.text(VILLAGE_CADRE, "12")
            await press(h, VILLAGE_CADRE, ":ok", mark)
            await h.answer(LIAISON, 0, lambda s: "保洁人数: 12" in words(s))

    run(scenario)
    with Session(ctx.engine) as session:
        [answer] = session.exec(select(DataRequestTown)).all()
    assert answer.values == {"保洁人数": 12}
