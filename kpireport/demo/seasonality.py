"""The demo company's calendar: seasons, growth, working days and how close dates move.

Day numbers (days since 1970-01-01, ``int64``) are the generator's time axis;
these helpers work on whole arrays of them.

Design decisions
----------------
* **One season for everything.** :data:`SEASON` scales new leads, deals and
  team marketing alike (a quiet July, a weak December, a strong autumn), so
  the KPIs share one seasonal shape the forecasts and goal plans can learn.
* **Growth is split in two.** Sellers get :data:`PRODUCTIVITY_GROWTH` more
  productive per year and list prices rise :data:`PRICE_GROWTH`; head count
  (joiners and leavers, in :mod:`kpireport.demo.generator`) adds the rest.
* **Close dates move the way real closes move** (:func:`move_closes`): July
  and late-December closes slip to the next month (holidays), closes early
  in April, July and October are pulled into the last days of the quarter
  before (quarter-end push), and weekend days go to the nearest weekday
  (:func:`to_workday`), except web leads, which keep some Sunday dates.
* **Deterministic.** Every random draw comes from the ``rng`` passed in, in a
  fixed order, so the caller's seed decides everything.
"""

from __future__ import annotations

import numpy as np

#: relative volume of new leads/deals per calendar month (Jan..Dec)
SEASON = np.array([0.95, 1.05, 1.10, 1.05, 1.05, 0.95, 0.55, 0.80, 1.15, 1.15, 1.10, 0.75])
#: yearly productivity growth per seller (headcount adds the rest)
PRODUCTIVITY_GROWTH = 0.10
PRICE_GROWTH = 0.04


def weekday(days: np.ndarray) -> np.ndarray:
    """Monday = 0 for day numbers (1970-01-01 was a Thursday)."""
    return (days + 3) % 7


def to_workday(days: np.ndarray, keep: np.ndarray | float, rng: np.random.Generator,
                lo: np.ndarray | int, hi: np.ndarray | int) -> np.ndarray:  # fmt: skip
    """Move weekend days to the nearest weekday inside ``[lo, hi]`` unless kept.

    Saturdays go to Friday, Sundays to Monday (or the other way round when
    that leaves the window); a day keeps its weekend date with prob. ``keep``.
    """
    wd = weekday(days)
    move = (wd >= 5) & (rng.random(days.shape[0]) >= keep)
    first = np.where(wd == 5, -1, 1)
    out = np.where(move, days + first, days)
    bad = move & ((out < lo) | (out > hi))
    out = np.where(bad, days + np.where(wd == 5, 2, -2), out)
    return np.clip(out, lo, hi)


def month_index(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of day numbers (via a lookup table over the days' range)."""
    days = np.asarray(days, dtype=np.int64)
    if days.shape[0] < 1000:
        return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    lo, hi = int(days.min()), int(days.max())
    table = np.arange(lo, hi + 1).astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return table[days - lo]


def move_closes(planned: np.ndarray, created: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Close dates as they really happen: holiday slips, quarter-end pushes, weekdays."""
    n = planned.shape[0]
    d = planned.copy()
    date = d.astype("datetime64[D]")
    month0 = date.astype("datetime64[M]")
    moy = month0.astype(np.int64) % 12  # 0 = January
    dom = (date - month0.astype("datetime64[D]")).astype(np.int64)  # 0-based day of month
    # quarter-end push: closes early in Apr/Jul/Oct pulled into the last week of the quarter
    pull = np.isin(moy, (3, 6, 9)) & (dom < 21) & (rng.random(n) < 0.5)
    pulled = month0.astype("datetime64[D]").astype(np.int64) - rng.integers(1, 8, n)
    pull &= pulled > created + 2
    d = np.where(pull, pulled, d)
    moy = np.where(pull, (moy - 1) % 12, moy)
    dom = np.where(pull, 27, dom)
    # holidays: July and late-December closes slip into the next month
    slip = ((moy == 6) & (rng.random(n) < 0.45)) | (
        (moy == 11) & (dom >= 10) & (rng.random(n) < 0.7)
    )
    d = np.where(slip, d + rng.integers(21, 35, n), d)
    return to_workday(d, 0.0, rng, created, d + 2)
