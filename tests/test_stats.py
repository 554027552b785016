"""Statistics and the two-way evaluation: the score by hand, period boundaries,
and a month of calls driven through the use cases, then reported."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, select

from models import Call, CallStatus, Member, RatingLevel, Role, Unit, UnitKind
from tests.conftest import T0, Org
from workflows import calls
from workflows.context import Context, EvaluationWeights
from workflows.facts import late_calls, late_now
from workflows.stats import (
    Figures,
    Period,
    competition_ranks,
    deduction,
    department_score,
    report,
    tally,
)
from workflows.sweep import sweep
from workflows.views import CallView

SHANGHAI = ZoneInfo("Asia/Shanghai")


def utc(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- the score, by hand ----------------------------------------------------------


def test_the_fifty_fifty_score_by_hand() -> None:
    figures = Figures(
        raised=4,
        closed=3,
        on_time_acknowledged=3,
        on_time_responded=2,
        on_time_resolved=2,
        rated=3,
        rating_sum=100 + 80 + 0,
        satisfied=2,
    )
    rating, performance, score = department_score(figures, EvaluationWeights())
    # rating: (100 + 80 + 0) / 3 = 60
    assert rating == pytest.approx(60.0)
    # performance: ack 3/4 = 75, respond 2/4 = 50, resolve 2/4 = 50, closure 3/4 = 75;
    # equal weights of 1/4 → (75 + 50 + 50 + 75) / 4 = 250 / 4 = 62.5
    assert performance == pytest.approx(62.5)
    # score: 0.5 × 60 + 0.5 × 62.5 = 30 + 31.25 = 61.25
    assert score == pytest.approx(61.25)
    assert figures.response_rate == pytest.approx(0.75)  # 3 on time / 4 raised
    assert figures.resolution_rate == pytest.approx(0.75)  # 3 closed / 4 raised
    assert figures.satisfaction_rate == pytest.approx(2 / 3)  # 2 (mostly) satisfied / 3 rated


def test_weights_are_normalised_and_configurable() -> None:
    figures = Figures(
        raised=4,
        closed=3,
        on_time_acknowledged=3,
        on_time_responded=2,
        on_time_resolved=2,
        rated=3,
        rating_sum=180,
    )
    # weights 1:1:1:1 are the same as 0.25 each
    same = EvaluationWeights(on_time_acknowledge=1, on_time_respond=1, on_time_resolve=1, closure=1)
    assert department_score(figures, same) == pytest.approx((60.0, 62.5, 61.25))
    # closure only, ratings 30 %: performance = 3/4 = 75; 0.3 × 60 + 0.7 × 75 = 18 + 52.5 = 70.5
    closure_only = EvaluationWeights(
        rating_share=0.3, on_time_acknowledge=0, on_time_respond=0, on_time_resolve=0, closure=2
    )
    assert department_score(figures, closure_only) == pytest.approx((60.0, 75.0, 70.5))


def test_without_ratings_the_score_is_the_performance() -> None:
    figures = Figures(
        raised=2, closed=1, on_time_acknowledged=2, on_time_responded=1, on_time_resolved=1
    )
    # (100 + 50 + 50 + 50) / 4 = 62.5, and nothing rated
    assert department_score(figures, EvaluationWeights()) == (None, 62.5, 62.5)
    assert figures.satisfaction_rate is None


def test_no_calls_scores_zero_and_rates_are_none() -> None:
    empty = Figures()
    assert department_score(empty, EvaluationWeights()) == (None, 0.0, 0.0)
    assert empty.response_rate is None
    assert empty.resolution_rate is None
    assert empty.satisfaction_rate is None


@pytest.mark.parametrize(
    "weights",
    [
        EvaluationWeights(rating_share=1.5),
        EvaluationWeights(rating_share=-0.1),
        EvaluationWeights(on_time_acknowledge=-1),
        EvaluationWeights(on_time_acknowledge=0, on_time_respond=0, on_time_resolve=0, closure=0),
    ],
)
def test_bad_weights_are_refused(weights: EvaluationWeights) -> None:
    with pytest.raises(ValueError):
        department_score(Figures(raised=1), weights)


def test_ties_share_a_rank_and_the_next_rank_skips() -> None:
    assert competition_ranks([50.0, 80.0, 50.0, None, 20.0]) == [2, 1, 2, None, 4]
    assert competition_ranks([61.25, 61.25 + 1e-12]) == [1, 1]  # float noise is no lead
    assert competition_ranks([]) == []


# --- periods -------------------------------------------------------------------------


def test_a_month_in_shanghai_starts_at_local_midnight() -> None:
    october = Period.month(2026, 10, SHANGHAI)
    assert october.start == datetime(2026, 9, 30, 16, 0, tzinfo=UTC)
    assert october.end == datetime(2026, 10, 31, 16, 0, tzinfo=UTC)
    assert october.label == "2026-10"
    assert datetime(2026, 9, 30, 15, 59, 59, tzinfo=UTC) not in october
    assert datetime(2026, 9, 30, 16, 0, tzinfo=UTC) in october
    assert datetime(2026, 10, 31, 16, 0, tzinfo=UTC) not in october  # half-open


def test_december_ends_at_the_new_year() -> None:
    december = Period.month(2026, 12, SHANGHAI)
    assert december.start == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert december.end == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)


def test_parse_and_month_of() -> None:
    assert Period.parse(" 2026-10 ", SHANGHAI) == Period.month(2026, 10, SHANGHAI)
    # 2026-09-30 16:30 UTC is already 1 October in Shanghai
    assert Period.month_of(utc(9, 30, 16, 30), SHANGHAI).label == "2026-10"


@pytest.mark.parametrize("text", ["2026-13", "2026-00", "2026-1", "26-10", "October", ""])
def test_parse_refuses_what_is_not_a_month(text: str) -> None:
    with pytest.raises(ValueError, match="not a month") as info:
        Period.parse(text, SHANGHAI)
    assert repr(text) in str(info.value)


def test_a_period_must_be_aware_and_forward() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Period(datetime(2026, 1, 1), datetime(2026, 2, 1), "naive")
    with pytest.raises(ValueError, match="ends before"):
        Period(utc(2, 1, 0), utc(1, 1, 0), "backwards")


# --- a month of calls ---------------------------------------------------------------

# March 2026 has no holidays or make-up days in mainland China; 2 March is a
# Monday. Drain calls (1wd / 2wd / 5wd) raised Monday 2 March 09:00 local are
# due: acknowledge Tue 3 March 18:00 local (10:00 UTC), respond Wed 4 March
# 10:00 UTC, resolve Mon 9 March 10:00 UTC. Flood calls are 15m / 1h / 8h.
MARCH = Period.month(2026, 3, SHANGHAI)
NOW = utc(4, 2, 0)


def add_second_town(ctx: Context) -> int:
    """A second town, 人和镇, with a caller of its own; returns the caller's id."""
    with Session(ctx.engine) as session:
        town = Unit(code="renhe", name="人和镇", kind=UnitKind.TOWN, parent_id=None)
        session.add(town)
        session.flush()
        caller = Member(
            code="zhao", name="zhao", role=Role.CALLER, unit_id=town.id or 0, created_at=T0
        )
        session.add(caller)
        session.commit()
        assert caller.id is not None
        return caller.id


def call_id(call: CallView) -> int:
    return call.id


def test_a_month_of_calls(ctx: Context, org: Org) -> None:
    zhao = add_second_town(ctx)
    water, urban = org.water_liaison, org.urban_liaison

    # A — water, village caller: everything on time; satisfied (100).
    a = call_id(calls.raise_call(ctx, org.caller, utc(3, 2, 1), "drain A", item_code="drain"))
    calls.acknowledge(ctx, a, water, utc(3, 2, 2))  # 60 min after dispatch
    calls.respond(ctx, a, water, utc(3, 2, 3), "on our way")
    calls.resolve(ctx, a, water, utc(3, 3, 1), note="cleared")  # 24 h
    calls.confirm(ctx, a, org.caller, utc(3, 3, 2), RatingLevel.SATISFIED)

    # B — water: acknowledged late, responded on time, resolved late; dissatisfied (0).
    b = call_id(calls.raise_call(ctx, org.caller, utc(3, 2, 1), "drain B", item_code="drain"))
    calls.acknowledge(ctx, b, water, utc(3, 4, 1))  # due 3 March 10:00 → late, 48 h = 2880 min
    calls.respond(ctx, b, water, utc(3, 4, 2), "tomorrow")  # due 4 March 10:00 → on time
    calls.resolve(ctx, b, water, utc(3, 10, 1), note="cleared")  # due 9 March → late, 192 h
    calls.confirm(ctx, b, org.caller, utc(3, 10, 2), RatingLevel.DISSATISFIED)

    # C — water, the other town's caller: acknowledged on time, then nothing (overdue by NOW).
    c = call_id(calls.raise_call(ctx, zhao, utc(3, 2, 1), "drain C", item_code="drain"))
    calls.acknowledge(ctx, c, water, utc(3, 2, 4))  # 180 min

    # D — water, emergency, town caller: all on time; mostly satisfied (80).
    d = call_id(calls.raise_call(ctx, org.other_caller, utc(3, 5, 2), "flood D", item_code="flood"))
    calls.acknowledge(ctx, d, water, utc(3, 5, 2, 10))  # due 02:15 → on time, 10 min
    calls.respond(ctx, d, water, utc(3, 5, 2, 30), "pumps coming")  # due 03:00
    calls.resolve(ctx, d, water, utc(3, 5, 4), note="pumped")  # due 10:00 → on time, 2 h
    calls.confirm(ctx, d, org.other_caller, utc(3, 5, 5), RatingLevel.MOSTLY_SATISFIED)

    # E — urban, joint with housing: all on time; satisfied. Housing is assisting only.
    e = call_id(
        calls.raise_call(
            ctx, org.other_caller, utc(3, 3, 1), "building E", item_code="illegal-building"
        )
    )
    calls.acknowledge(ctx, e, urban, utc(3, 3, 2))
    calls.acknowledge(ctx, e, org.housing_liaison, utc(3, 3, 2, 30))
    calls.respond(ctx, e, urban, utc(3, 3, 3), "inspecting")
    calls.resolve(ctx, e, urban, utc(3, 4, 1), note="demolished")
    calls.confirm(ctx, e, org.other_caller, utc(3, 4, 2), RatingLevel.SATISFIED)

    # F — raised for water, returned as misrouted, upheld to urban: urban's, not water's.
    # Redispatched Fri 6 March 03:00 UTC: acknowledge due Mon 9 March 10:00 UTC.
    f = call_id(calls.raise_call(ctx, org.caller, utc(3, 6, 1), "drain F", item_code="drain"))
    request = calls.return_call(ctx, f, water, utc(3, 6, 2), "this is a building matter")
    assert request.id is not None
    calls.decide_return(
        ctx, request.id, org.dispatcher, utc(3, 6, 3), uphold=True, department_code="urban"
    )
    calls.acknowledge(ctx, f, urban, utc(3, 6, 4))  # on time; never responded → overdue

    # G — withdrawn: counts nowhere.
    g = call_id(calls.raise_call(ctx, org.caller, utc(3, 7, 1), "drain G", item_code="drain"))
    calls.withdraw(ctx, g, org.caller, utc(3, 7, 2), "sorted it ourselves")

    # H — no catalog item: waits for the dispatcher; in the total and the town only.
    calls.raise_call(ctx, org.other_caller, utc(3, 8, 1), "not sure whose")

    # Outside March in Shanghai: the last minute of February and the first of April.
    calls.raise_call(ctx, org.caller, utc(2, 28, 15, 59), "february", item_code="drain")
    calls.raise_call(ctx, org.caller, utc(3, 31, 16), "april", item_code="drain")

    result = report(ctx, MARCH, NOW)

    assert result.period == MARCH
    assert result.as_of == NOW
    # A, B, C, D, E, F, H raised (G withdrawn); A, B, D, E closed.
    assert result.headline() == "7 calls raised, 4 answered and closed"

    by_code = {entry.department_code: entry for entry in result.departments}
    assert [entry.department_code for entry in result.departments] == ["urban", "water", "housing"]

    # water: A, B, C, D (F left with its upheld return)
    water_figures = by_code["water"].figures
    assert replace(water_figures, avg_hours_to_acknowledge=None, avg_hours_to_respond=None,
                   avg_hours_to_resolve=None) == Figures(
        raised=4,
        acknowledged=4,
        responded=3,  # A, B, D
        closed=3,  # A, B, D
        late=2,  # B (done late), C (respond and resolve deadlines passed by NOW)
        overdue=1,  # C: still open with deadlines passed; B is late but finished
        on_time_acknowledged=3,  # A, C, D
        on_time_responded=3,  # A, B, D
        on_time_resolved=2,  # A, D
        rated=3,
        rating_sum=180,  # 100 + 0 + 80
        satisfied=2,  # A, D
    )
    # Working hours (09:00–18:00 on working days) from dispatch; D is an
    # emergency, whose limits run round the clock, so its hours are elapsed.
    # A: Mon 09:00 → 10:00 = 1 h; B: Mon 09:00 → Wed 09:00 = 18 h; C: → 12:00 = 3 h; D: 10 min.
    assert water_figures.avg_hours_to_acknowledge == pytest.approx((1 + 18 + 3 + 1 / 6) / 4)
    # A: → 11:00 = 2 h; B: → Wed 10:00 = 19 h; D: 30 min.
    assert water_figures.avg_hours_to_respond == pytest.approx((2 + 19 + 0.5) / 3)
    # A: Mon 09:00 → Tue 09:00 = 9 h; B: → Tue 10 March 09:00 = 6 working days = 54 h; D: 2 h.
    assert water_figures.avg_hours_to_resolve == pytest.approx((9 + 54 + 2) / 3)
    # rating 180 / 3 = 60; performance (75 + 75 + 50 + 75) / 4 = 68.75;
    # score 0.5 × 60 + 0.5 × 68.75 = 64.375
    assert by_code["water"].rating_score == pytest.approx(60.0)
    assert by_code["water"].performance_score == pytest.approx(68.75)
    assert by_code["water"].score == pytest.approx(64.375)
    assert by_code["water"].rank == 2

    # urban: E and F. rating 100; performance: ack 2/2 = 100, respond 1/2 = 50,
    # resolve 1/2 = 50, closure 1/2 = 50 → 250 / 4 = 62.5; score 50 + 31.25 = 81.25
    urban_entry = by_code["urban"]
    assert (urban_entry.figures.raised, urban_entry.figures.closed) == (2, 1)
    assert (urban_entry.figures.late, urban_entry.figures.overdue) == (1, 1)  # F
    assert urban_entry.rating_score == pytest.approx(100.0)
    assert urban_entry.performance_score == pytest.approx(62.5)
    assert urban_entry.score == pytest.approx(81.25)
    assert urban_entry.rank == 1

    # housing assisted on E but leads nothing: listed, not ranked.
    housing = by_code["housing"]
    assert housing.figures == Figures()
    assert (housing.performance_score, housing.score, housing.rank) == (None, None, None)

    # towns, by code: the village's calls roll up into taihe; H (no department) counts there.
    assert [(g.code, g.name) for g in result.towns] == [("taihe", "taihe"), ("renhe", "人和镇")]
    assert result.town("taihe").raised == 6  # A, B, D, E, F, H
    assert result.town("taihe").closed == 4
    assert result.town("renhe").raised == 1  # C
    assert result.town("renhe").overdue == 1

    # domains: H has none and counts in the "no domain" row, so they add up to the total.
    assert [g.code for g in result.domains] == ["enforcement", "emergency", None]
    assert result.domain("enforcement").raised == 5  # A, B, C, E, F
    assert result.domain("emergency").raised == 1  # D
    assert result.domain("emergency").satisfaction_rate == pytest.approx(1.0)
    assert result.domain(None).raised == 1  # H
    assert sum(g.figures.raised for g in result.domains) == result.total.raised
    assert sum(g.figures.raised for g in result.towns) == result.total.raised

    total = result.total
    assert (total.raised, total.acknowledged, total.responded, total.closed) == (7, 6, 4, 4)
    assert total.late == 3  # B, C, F
    assert total.overdue == 2  # C, F: still open; B was late but is closed
    assert total.on_time_acknowledged == 5  # A, C, D, E, F
    assert (total.rated, total.rating_sum, total.satisfied) == (4, 280, 3)
    assert total.response_rate == pytest.approx(5 / 7)
    assert total.resolution_rate == pytest.approx(4 / 7)
    assert total.satisfaction_rate == pytest.approx(3 / 4)


def test_an_empty_month(ctx: Context, org: Org) -> None:
    result = report(ctx, Period.month(2026, 1, SHANGHAI), NOW)
    assert result.headline() == "0 calls raised, 0 answered and closed"
    assert result.total == Figures()
    assert all(entry.rank is None for entry in result.departments)
    assert [(g.code, g.figures) for g in result.towns] == [("taihe", Figures())]
    assert [g.code for g in result.domains] == ["enforcement", "emergency"]


def test_one_call_headline_and_open_call_not_yet_due(ctx: Context, org: Org) -> None:
    raised = utc(3, 2, 1)
    calls.raise_call(ctx, org.caller, raised, "drain", item_code="drain")
    # Half an hour later nothing is due yet: not overdue, but not on time either.
    result = report(ctx, MARCH, utc(3, 2, 1, 30))
    assert result.headline() == "1 call raised, 0 answered and closed"
    water = next(e for e in result.departments if e.department_code == "water")
    assert water.figures.overdue == 0
    assert water.figures.on_time_acknowledged == 0
    assert (water.performance_score, water.score, water.rank) == (0.0, 0.0, 1)
    # The next morning the acknowledge deadline (3 March 10:00 UTC) has passed.
    assert report(ctx, MARCH, utc(3, 3, 10, 1)).total.overdue == 1


def test_tally_skips_withdrawn_and_reads_ratings(ctx: Context, org: Org) -> None:
    call = calls.raise_call(ctx, org.caller, utc(3, 2, 1), "drain", item_code="drain")
    calls.acknowledge(ctx, call_id(call), org.water_liaison, utc(3, 2, 2))
    calls.respond(ctx, call_id(call), org.water_liaison, utc(3, 2, 3), "ok")
    calls.resolve(ctx, call_id(call), org.water_liaison, utc(3, 2, 4), note="done")
    calls.confirm(ctx, call_id(call), org.caller, utc(3, 2, 5), RatingLevel.MOSTLY_SATISFIED)
    (fact,) = report(ctx, MARCH, NOW).facts
    assert tally([fact]).rating_sum == 80 and tally([fact]).satisfied == 1
    assert tally([replace(fact, status=CallStatus.WITHDRAWN)]) == Figures()
    assert tally([]) == Figures()


# --- 督办 and 问责 weigh on the score -------------------------------------------------


def test_deductions_by_hand() -> None:
    figures = Figures(raised=2, on_time_acknowledged=2, on_time_responded=2,
                      on_time_resolved=2, closed=2, supervised=2, referred=1,
                      rated=2, rating_sum=200)
    weights = EvaluationWeights()
    assert deduction(figures, weights) == 2 * 5 + 1 * 10
    assert department_score(figures, weights) == pytest.approx((100.0, 100.0, 80.0))
    harsh = EvaluationWeights(supervision_deduction=60, accountability_deduction=60)
    assert department_score(figures, harsh)[2] == 0.0  # never below 0
    with pytest.raises(ValueError, match="deductions"):
        deduction(figures, EvaluationWeights(supervision_deduction=-1))


def test_an_unanswered_call_that_reached_accountability_cannot_outrank_a_clean_record(
    ctx: Context, org: Org
) -> None:
    """Water closes everything on time but is rated 基本满意 (80): 0.5 × 80 +
    0.5 × 100 = 90. Urban closes 19 calls on time, all rated 满意, and leaves
    one unanswered until it is referred for accountability: 0.5 × 100 + 0.5 ×
    95 = 97.5 before deductions — the seed's ranking put it first — and
    97.5 − 5 (督办) − 10 (问责) = 82.5 now."""
    monday = utc(3, 2, 1)
    done = calls.raise_call(ctx, org.caller, monday, "drain", item_code="drain")
    calls.acknowledge(ctx, call_id(done), org.water_liaison, utc(3, 2, 2))
    calls.respond(ctx, call_id(done), org.water_liaison, utc(3, 2, 3), "ok")
    calls.resolve(ctx, call_id(done), org.water_liaison, utc(3, 2, 4), note="done")
    calls.confirm(ctx, call_id(done), org.caller, utc(3, 2, 5), RatingLevel.MOSTLY_SATISFIED)
    for n in range(19):
        call = call_id(calls.raise_call(ctx, org.other_caller, monday, f"building {n}",
                                        item_code="illegal-building"))
        calls.acknowledge(ctx, call, org.urban_liaison, utc(3, 2, 2))
        calls.acknowledge(ctx, call, org.housing_liaison, utc(3, 2, 2))
        calls.respond(ctx, call, org.urban_liaison, utc(3, 2, 3), "ok")
        calls.resolve(ctx, call, org.urban_liaison, utc(3, 2, 4), note="done")
        calls.confirm(ctx, call, org.other_caller, utc(3, 2, 5), RatingLevel.SATISFIED)
    ignored = call_id(calls.raise_call(ctx, org.caller, monday, "ignored",
                                       item_code="illegal-building"))
    # Acknowledge was due Tue 3 March 18:00 local; 督办 Wed, 问责 Fri 6 March 18:00.
    sweep(ctx, utc(3, 6, 10, 30))

    result = report(ctx, MARCH, NOW)
    (fact,) = [f for f in result.facts if f.call_id == ignored]
    assert fact.supervised and fact.referred and fact.late_now
    water, urban = result.department("water"), result.department("urban")
    assert (urban.figures.supervised, urban.figures.referred) == (1, 1)
    assert urban.deduction == 15.0
    assert water.score == pytest.approx(90.0)
    assert urban.score == pytest.approx(82.5)
    assert (water.rank, urban.rank) == (1, 2)


# --- late now: one rule, in Python and in SQL -------------------------------------


def test_late_now_in_python_and_sql_agree(ctx: Context, org: Org) -> None:
    a = call_id(calls.raise_call(ctx, org.caller, utc(3, 2, 1), "a", item_code="drain"))
    b = call_id(calls.raise_call(ctx, org.caller, utc(3, 2, 1), "b", item_code="drain"))
    calls.acknowledge(ctx, b, org.water_liaison, utc(3, 4, 1))  # late, but done
    c = call_id(calls.raise_call(ctx, org.caller, utc(3, 2, 1), "c", item_code="drain"))
    calls.withdraw(ctx, c, org.caller, utc(3, 2, 2))
    calls.raise_call(ctx, org.caller, utc(3, 2, 1), "no item")  # no deadlines
    for moment in (utc(3, 2, 2), utc(3, 3, 10, 1), utc(3, 4, 10, 1), NOW):
        with Session(ctx.engine) as session:
            every = list(session.exec(select(Call)))
            in_python = {call.id for call in every if late_now(call, moment)}
            in_sql = {call.id for call in late_calls(session, moment)}
        assert in_python == in_sql
    assert in_python == {a, b}  # at NOW both have passed deadlines not done
