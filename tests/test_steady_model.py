"""The steady-state model picks the right earlier points, in the business's local time (pure, no server)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pang.steady.alerts import AlertTracker
from pang.steady.model import ModelConfig, ModelError, Point, evaluate, model_config
from pang.steady.signals import SignalError, parse_signals, signals_from
from pang.settings import load_settings

BERLIN = ZoneInfo("Europe/Berlin")
MIN = timedelta(minutes=1)


def unique_series(first: datetime, last: datetime) -> dict[datetime, float]:
    """Every minute a distinct value near 1000, so a cycle value tells which minute it came from."""
    out: dict[datetime, float] = {}
    t = first
    i = 0
    while t < last:
        out[t] = 1000.0 + (i % 997) * 0.001 + i * 1e-6
        t += MIN
        i += 1
    return out


def one(series, minute: datetime, config: ModelConfig) -> Point:
    [p] = evaluate(series, minute, minute + MIN, config)
    return p


def utc(local: datetime) -> datetime:
    return local.astimezone(UTC)


def test_ordinary_minute_uses_same_weekday_and_time_of_earlier_weeks() -> None:
    cfg = ModelConfig(timezone="UTC", history_weeks=4)
    target = datetime(2026, 3, 11, 14, 37, tzinfo=UTC)  # a Wednesday
    series = unique_series(target - timedelta(weeks=6), target + timedelta(hours=1))
    p = one(series, target, cfg)
    assert p.kind == "weekly"
    assert p.cycles == {
        "last_week": series[target - timedelta(weeks=1)],
        "2_weeks_ago": series[target - timedelta(weeks=2)],
        "3_weeks_ago": series[target - timedelta(weeks=3)],
        "4_weeks_ago": series[target - timedelta(weeks=4)],
    }
    assert not p.low_confidence and p.observed == series[target]
    assert p.lower < p.expected < p.upper


def test_first_of_month_midnight_uses_earlier_firsts() -> None:
    cfg = ModelConfig(timezone="Europe/Berlin", history_weeks=4, month_history=3)
    target = utc(datetime(2026, 10, 1, 0, 0, tzinfo=BERLIN))
    series = unique_series(utc(datetime(2026, 6, 25, tzinfo=BERLIN)), target + timedelta(hours=2))
    p = one(series, target, cfg)
    assert p.kind == "month_start"
    assert p.cycles == {
        "first_of_last_month": series[utc(datetime(2026, 9, 1, 0, 0, tzinfo=BERLIN))],
        "first_2_months_ago": series[utc(datetime(2026, 8, 1, 0, 0, tzinfo=BERLIN))],
        "first_3_months_ago": series[utc(datetime(2026, 7, 1, 0, 0, tzinfo=BERLIN))],
    }
    # the 2nd minute of the sale compares with the 2nd minute of earlier sales
    p2 = one(series, target + MIN, cfg)
    assert p2.cycles["first_of_last_month"] == series[utc(datetime(2026, 9, 1, 0, 1, tzinfo=BERLIN))]


def test_sunday_2359_uses_earlier_sundays() -> None:
    cfg = ModelConfig(timezone="Europe/Berlin", history_weeks=3)
    target = utc(datetime(2026, 10, 18, 23, 59, tzinfo=BERLIN))  # a Sunday
    series = unique_series(target - timedelta(weeks=4), target + timedelta(hours=1))
    p = one(series, target, cfg)
    assert p.cycles == {
        "last_week": series[utc(datetime(2026, 10, 11, 23, 59, tzinfo=BERLIN))],
        "2_weeks_ago": series[utc(datetime(2026, 10, 4, 23, 59, tzinfo=BERLIN))],
        "3_weeks_ago": series[utc(datetime(2026, 9, 27, 23, 59, tzinfo=BERLIN))],
    }


def test_daily_2359_uses_earlier_days_but_not_sundays() -> None:
    cfg = ModelConfig(timezone="Europe/Berlin", history_weeks=3, daily_days=3)
    target = utc(datetime(2026, 10, 13, 23, 59, tzinfo=BERLIN))  # a Tuesday: Monday, (Sunday skipped), Saturday
    series = unique_series(target - timedelta(weeks=4), target + timedelta(hours=1))
    p = one(series, target, cfg)
    assert p.kind == "daily_peak"
    assert list(p.cycles) == ["yesterday", "3_days_ago"]
    assert p.cycles["yesterday"] == series[utc(datetime(2026, 10, 12, 23, 59, tzinfo=BERLIN))]
    assert p.cycles["3_days_ago"] == series[utc(datetime(2026, 10, 10, 23, 59, tzinfo=BERLIN))]


def test_same_local_time_last_week_across_the_dst_change() -> None:
    cfg = ModelConfig(timezone="Europe/Berlin", history_weeks=2)
    target = utc(datetime(2026, 10, 26, 10, 0, tzinfo=BERLIN))  # CET (UTC+1): 09:00Z
    series = unique_series(target - timedelta(weeks=3), target + timedelta(hours=1))
    p = one(series, target, cfg)
    assert target == datetime(2026, 10, 26, 9, 0, tzinfo=UTC)
    last_week = datetime(2026, 10, 19, 8, 0, tzinfo=UTC)  # 10:00 CEST (UTC+2): 61 minutes less than 7 x 24 h back... in UTC
    assert p.cycles["last_week"] == series[last_week]
    assert target - last_week == timedelta(days=7, hours=1)
    # the repeated hour: both 02:30 of 25 October look at the one 02:30 of the week before
    first, second = datetime(2026, 10, 25, 0, 30, tzinfo=UTC), datetime(2026, 10, 25, 1, 30, tzinfo=UTC)
    assert first.astimezone(BERLIN).strftime("%H:%M") == second.astimezone(BERLIN).strftime("%H:%M") == "02:30"
    want = series[utc(datetime(2026, 10, 18, 2, 30, tzinfo=BERLIN))]
    assert one(series, first, cfg).cycles["last_week"] == want
    assert one(series, second, cfg).cycles["last_week"] == want


@pytest.mark.parametrize(("zone", "peak_utc"), [("UTC", (23, 59)), ("Europe/Berlin", (21, 59))])
def test_business_timezone_decides_what_2359_is(zone: str, peak_utc: tuple[int, int]) -> None:
    cfg = ModelConfig(timezone=zone, history_weeks=2)
    day = datetime(2026, 7, 15, tzinfo=UTC)  # summer: Berlin is UTC+2
    series = unique_series(day - timedelta(weeks=3), day + timedelta(days=1))
    pts = evaluate(series, day, day + timedelta(days=1), cfg, with_cycles=False)
    peaks = [(p.minute.hour, p.minute.minute) for p in pts if p.kind == "daily_peak"]
    assert peaks == [(peak_utc[0], peak_utc[1] - 1), peak_utc]


def test_missing_history_is_low_confidence_and_never_alerts() -> None:
    cfg = ModelConfig(timezone="UTC", history_weeks=4, min_cycles=3)
    start = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    series = unique_series(start - timedelta(weeks=2), start + timedelta(hours=1))  # only 2 earlier weeks
    for t in range(30):
        series[start + t * MIN] = 10.0  # a 99 % drop
    pts = evaluate(series, start, start + timedelta(minutes=30), cfg)
    assert all(p.low_confidence for p in pts)
    assert all(p.outside is None for p in pts)
    assert sum(v is not None for v in pts[0].cycles.values()) == 2
    tracker = AlertTracker(cfg)
    assert [c for p in pts for c in tracker.update("orders", p)] == []
    # with a third week the same drop is seen
    series.update(unique_series(start - timedelta(weeks=3), start - timedelta(weeks=3) + timedelta(hours=1)))
    pts = evaluate(series, start, start + timedelta(minutes=30), cfg)
    assert not pts[0].low_confidence and pts[0].outside == "drop"


def test_a_drop_is_outside_and_the_level_factor_follows_a_busier_day() -> None:
    cfg = ModelConfig(timezone="UTC", history_weeks=4)
    start = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
    series = {t: v for t, v in unique_series(start - timedelta(weeks=5), start + timedelta(hours=2)).items()}
    for t in list(series):
        if t >= start - timedelta(hours=2):
            series[t] *= 1.08  # today runs 8 % above earlier weeks: a busier day, not an incident
    pts = evaluate(series, start, start + timedelta(minutes=10), cfg)
    assert pts[0].expected == pytest.approx(1.08 * 1000, rel=0.005)
    assert all(p.outside is None for p in pts)
    for t in range(3):
        series[start + timedelta(minutes=20 + t)] *= 0.75
    drop = evaluate(series, start + timedelta(minutes=20), start + timedelta(minutes=23), cfg)
    assert drop[0].outside == "drop"


def test_holidays_compare_with_earlier_holidays() -> None:
    cfg = ModelConfig(timezone="UTC", history_weeks=4, holidays=("2026-04-06", "2026-05-01", "2026-05-14"))
    target = datetime(2026, 5, 14, 11, 0, tzinfo=UTC)
    series = unique_series(datetime(2026, 3, 20, tzinfo=UTC), target + timedelta(hours=1))
    p = one(series, target, cfg)
    assert p.kind == "holiday"
    assert p.cycles == {
        "holiday_2026-05-01": series[datetime(2026, 5, 1, 11, 0, tzinfo=UTC)],
        "holiday_2026-04-06": series[datetime(2026, 4, 6, 11, 0, tzinfo=UTC)],
    }
    assert p.low_confidence  # 2 earlier holidays < min_cycles: says so
    # an ordinary day a week after a holiday skips it as "last week"
    after = one(series, datetime(2026, 5, 8, 11, 0, tzinfo=UTC), cfg)
    assert after.cycles["last_week"] is None and after.cycles["2_weeks_ago"] is not None


def test_country_code_holidays_from_the_holidays_package() -> None:
    from pang.steady.model import holiday_dates

    days = holiday_dates(["DE", "2026-12-24"], [2026])
    assert datetime(2026, 10, 3).date() in days and datetime(2026, 12, 24).date() in days
    with pytest.raises(ModelError):
        ModelConfig(holidays=("not a day",))


def test_settings_make_the_model_and_the_signals() -> None:
    s = load_settings(steady_band_width=3.5, steady_alert_k=2, steady_alert_n=3, business_timezone="UTC",
                      steady_ratios={"payment_failure_ratio": "payment_failures/payments"})
    cfg = model_config(s)
    assert (cfg.band_width, cfg.k, cfg.n, cfg.timezone) == (3.5, 2, 3, "UTC")
    sig = {x.name: x for x in signals_from(s)}
    assert sig["orders"].action == "order.placed" and sig["payment_failure_ratio"].is_ratio
    with pytest.raises(SignalError, match="not a count signal"):
        parse_signals({"orders": "order.placed"}, {"r": "orders/refunds"})
    with pytest.raises(ModelError, match="K <= N"):
        ModelConfig(k=3, n=2)


def test_a_coarser_step_uses_the_same_local_time_in_points_of_that_step() -> None:
    cfg = ModelConfig(timezone="Europe/Berlin", history_weeks=3, step=15)
    target = utc(datetime(2026, 10, 26, 10, 0, tzinfo=BERLIN))  # after the DST change
    series = {t: v for t, v in unique_series(target - timedelta(weeks=4), target + timedelta(hours=1)).items() if t.minute % 15 == 0}
    [p] = evaluate(series, target, target + timedelta(minutes=15), cfg)
    assert p.minute == target
    assert p.cycles["last_week"] == series[utc(datetime(2026, 10, 19, 10, 0, tzinfo=BERLIN))]
    with pytest.raises(ModelError, match="step"):
        ModelConfig(step=7)
