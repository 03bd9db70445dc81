"""The demo's goals table: targets set the way a sales planner sets them.

:class:`GoalSetter` reads the arrays of a finished
:class:`~kpireport.demo.generator.Simulation` (never its DataFrames) and
returns the canonical ``goals`` table for every (scope, grain, KPI) of
:data:`GOAL_PLAN`.

Design decisions
----------------
* **Set before the period, from complete months only**: a monthly plan per
  scope = the deseasonalised mean month of the last :data:`LEVEL_MONTHS`
  complete months x the organisation's (shrunk, :data:`SEASON_SHRINK`)
  seasonal index x its growth to the month x a 0–8 % stretch
  (:data:`STRETCH`); ratios: the pooled last six months with a small
  improvement. A planner cannot see the month being planned, so neither can
  the plan, and the goals are neither all reached nor all missed.
* **Grains agree.** Quarter targets are the sum of their months' plans, week
  targets the plan per working day of each day's month summed over the
  week's Monday–Friday, so month, quarter and week targets add up.
* **Sellers** get a plan from their own fully ramped months, or their team's
  median when they have fewer than three; key customers (the
  :data:`N_KEY_CUSTOMERS` largest by last year's revenue) a flat
  subscription-revenue plan.
* **Something for the goal lint.** A few goals lack ``agreed_by``, including
  every current goal of the newest seller.
* **No import of the KPI registry.** The demo computes its own actuals from the
  simulation's arrays (events per scope x period), so ``kpireport.demo`` stays
  directly above ``data`` in the stack (``tests/test_architecture.py``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from kpireport.constants import Scope
from kpireport.demo import columns as col
from kpireport.demo import seasonality as cal
from kpireport.demo.company import CEO, SALES_DIRECTOR, TEAMS

if TYPE_CHECKING:
    from kpireport.demo.generator import Simulation

#: goals the demo sets: (scope, grain, kpi)
GOAL_PLAN: tuple[tuple[str, str, str], ...] = (
    (Scope.ORGANISATION, "month", "revenue"),
    (Scope.ORGANISATION, "month", "won_value"),
    (Scope.ORGANISATION, "month", "deals_won"),
    (Scope.ORGANISATION, "month", "new_leads"),
    (Scope.ORGANISATION, "month", "hit_rate"),
    (Scope.ORGANISATION, "month", "cac"),
    (Scope.ORGANISATION, "month", "sales_cycle_days"),
    (Scope.ORGANISATION, "quarter", "revenue"),
    (Scope.ORGANISATION, "quarter", "won_value"),
    (Scope.ORGANISATION, "quarter", "new_leads"),
    (Scope.ORGANISATION, "quarter", "cac"),
    (Scope.ORGANISATION, "week", "new_leads"),
    (Scope.ORGANISATION, "week", "meetings_booked"),
    (Scope.TEAM, "month", "won_value"),
    (Scope.TEAM, "month", "deals_won"),
    (Scope.TEAM, "month", "meetings_booked"),
    (Scope.TEAM, "month", "hit_rate"),
    (Scope.TEAM, "month", "sales_cycle_days"),
    (Scope.TEAM, "quarter", "revenue"),
    (Scope.TEAM, "quarter", "won_value"),
    (Scope.TEAM, "week", "meetings_booked"),
    (Scope.SELLER, "month", "won_value"),
    (Scope.SELLER, "month", "deals_won"),
    (Scope.SELLER, "month", "meetings_booked"),
    (Scope.SELLER, "quarter", "won_value"),
    (Scope.SELLER, "quarter", "hit_rate"),
    (Scope.SELLER, "week", "meetings_booked"),
    (Scope.SELLER, "week", "quotes_sent"),
    (Scope.CUSTOMER, "month", "revenue"),
    (Scope.CUSTOMER, "quarter", "revenue"),
    (Scope.CUSTOMER, "week", "meetings_booked"),
)
#: KPIs whose goals are ceilings (direction ``at_most``)
AT_MOST_KPIS = ("cac", "sales_cycle_days")
#: goal plan: months behind a target's level, shrinkage of the seasonal index
#: towards 1, and the stretch range on top of the forecast-like plan
LEVEL_MONTHS = 6
SEASON_SHRINK = 0.5
STRETCH = (0.98, 1.08)
N_KEY_CUSTOMERS = 4


class GoalSetter:
    """The goals table of one finished simulation, set as a planner sets them (module docstring)."""

    def __init__(self, g: Simulation) -> None:
        self.g = g
        self.rng = g.rng["goals"]
        won = g.d_status == 1
        closed = g.d_status > 0
        self.events = {
            # kpi: (days, seller, company, value)
            "revenue": (g.r_day, g.r_seller, g.r_company, g.r_amount),
            "won_value": (g.d_closed[won], g.d_seller[won], g.d_company[won], g.d_value[won]),
            "deals_won": (g.d_closed[won], g.d_seller[won], g.d_company[won], np.ones(won.sum())),
            "new_leads": (g.l_day, g.l_seller, g.l_company, np.ones(g.l_day.shape[0])),
            "meetings_booked": self._acts(2),
            "quotes_sent": self._acts(3),
            "closed": (
                g.d_closed[closed],
                g.d_seller[closed],
                g.d_company[closed],
                np.ones(closed.sum()),
            ),
            "cycle": (
                g.d_closed[won],
                g.d_seller[won],
                g.d_company[won],
                (g.d_closed - g.d_created)[won].astype(float),
            ),
        }
        rev = pd.Series(g.r_amount).groupby(g.r_company).sum()
        prev_year = (g.r_day >= g.d1 - 730) & (g.r_day < g.d1 - 365)
        top = (
            pd.Series(g.r_amount[prev_year])
            .groupby(g.r_company[prev_year])
            .sum()
            .nlargest(N_KEY_CUSTOMERS)
        )
        self.key_customers = (
            top.index.to_numpy() if len(top) else rev.nlargest(N_KEY_CUSTOMERS).index.to_numpy()
        )
        # account owner of a key customer: the seller with most revenue there
        owners = {}
        for c in self.key_customers:
            m = g.r_company == c
            owners[c] = int(pd.Series(g.r_amount[m]).groupby(g.r_seller[m]).sum().idxmax())
        self.account_owner = owners
        self.cust_pos = np.full(g.n_companies, -1)
        self.cust_pos[self.key_customers] = np.arange(len(self.key_customers))

    def _acts(self, kind: int):
        g = self.g
        m = g.a_kind == kind
        return g.a_day[m], g.a_seller[m], g.a_company[m], np.ones(m.sum())

    # -- period keys: months since 1970-01, quarters since 1970-Q1, weeks by their Monday
    @staticmethod
    def _key(days: np.ndarray, grain: str) -> np.ndarray:
        if grain == "week":
            return days - cal.weekday(days)
        m = cal.month_index(days)
        return m if grain == "month" else m // 3

    @staticmethod
    def _bounds(key: int, grain: str) -> tuple[int, int, str]:
        if grain == "week":
            d = np.datetime64(int(key), "D").astype(dt.date)
            y, w, _ = d.isocalendar()
            return int(key), int(key) + 7, f"{y}-W{w:02d}"
        months = 1 if grain == "month" else 3
        m0 = int(key) * months
        start = int(np.datetime64(m0, "M").astype("datetime64[D]").astype(np.int64))
        end = int(np.datetime64(m0 + months, "M").astype("datetime64[D]").astype(np.int64))
        year = 1970 + m0 // 12
        label = f"{year}-{m0 % 12 + 1:02d}" if grain == "month" else f"{year}-Q{m0 % 12 // 3 + 1}"
        return start, end, label

    def _grid(self, grain: str) -> tuple[int, int, int]:
        """First period key, key step and number of periods from d0 to next month."""
        g = self.g
        k0 = int(self._key(np.array([g.d0]), grain)[0])
        k1 = int(self._key(np.array([g.d1]), grain)[0])
        step = 7 if grain == "week" else 1
        return k0, step, (k1 - k0) // step + 2

    def _scope_pos(
        self, scope: str, seller: np.ndarray, company: np.ndarray
    ) -> tuple[np.ndarray, int]:
        """Row of each record in the scope matrix (-1: not in any scope) and the row count."""
        g = self.g
        if scope == Scope.ORGANISATION:
            return np.zeros(seller.shape[0], dtype=np.int64), 1
        if scope == Scope.TEAM:
            return g.s_team[seller], len(TEAMS)
        if scope == Scope.SELLER:
            return seller, g.s_team.shape[0]
        return self.cust_pos[company], len(self.key_customers)

    def _sum(self, name: str, scope: str, grain: str) -> np.ndarray:
        """Sum of an event value as a dense (scope row x period) matrix."""
        days, seller, company, value = self.events[name]
        k0, step, n_p = self._grid(grain)
        sp, n_s = self._scope_pos(scope, seller, company)
        pp = (self._key(days, grain) - k0) // step
        ok = (sp >= 0) & (pp >= 0) & (pp < n_p)
        code = sp[ok] * n_p + pp[ok]
        return np.bincount(code, weights=value[ok], minlength=n_s * n_p).reshape(n_s, n_p)

    def _actual(self, kpi: str, scope: str, grain: str) -> np.ndarray:
        """Actual KPI per (scope row, period); NaN where undefined or (additive) zero."""
        with np.errstate(divide="ignore", invalid="ignore"):
            if kpi == "hit_rate":
                closed = self._sum("closed", scope, grain)
                return np.where(closed > 0, self._sum("deals_won", scope, grain) / closed, np.nan)
            if kpi == "sales_cycle_days":
                n = self._sum("deals_won", scope, grain)
                return np.where(n > 0, self._sum("cycle", scope, grain) / n, np.nan)
            if kpi == "cac":
                return self._cac(grain)
            total = self._sum(kpi, scope, grain)
            return np.where(total > 0, total, np.nan)

    def _cac(self, grain: str) -> np.ndarray:
        g = self.g
        k0, step, n_p = self._grid(grain)
        won = g.d_status == 1
        first_won = pd.Series(g.d_closed[won]).groupby(g.d_company[won]).min().to_numpy()

        def by_period(days: np.ndarray, values: np.ndarray) -> np.ndarray:
            pp = (self._key(days, grain) - k0) // step
            ok = (pp >= 0) & (pp < n_p)
            return np.bincount(pp[ok], weights=values[ok], minlength=n_p)

        days_in_month = np.diff(np.append(g.ms, g.ms[-1] + 31))
        salary = (g.exposure / days_in_month[None, :] * g.s_cost[:, None]).sum(axis=0)
        spend = by_period(g.c_day, g.c_amount) + by_period(g.ms, salary)
        new = by_period(first_won, np.ones(first_won.shape[0]))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(new > 0, spend / new, np.nan)[None, :]

    def _periods(self, grain: str) -> list[tuple[int, int, int, str]]:
        """Goal periods: from the second year of data to the current (and next) month."""
        g = self.g
        k0, step, _ = self._grid(grain)
        first = int(self._key(np.array([g.d0 + 365]), grain)[0])
        if grain == "week":
            first = g.d0 + 365 + (7 - int(cal.weekday(np.array([g.d0 + 365]))[0])) % 7
        last = int(self._key(np.array([g.d1]), grain)[0])
        keys = list(range(first, last + 1, step))
        if grain == "month":
            keys.append(last + 1)  # next month's goals are already agreed
        return [((k - k0) // step, *self._bounds(k, grain)) for k in keys]

    def run(self) -> pd.DataFrame:
        g = self.g
        frames = []
        for scope, grain, kpi in GOAL_PLAN:
            frames.append(self._goals_for(scope, grain, kpi))
        goals = pd.concat(frames, ignore_index=True)
        n = len(goals)
        # owners and who agreed: seller goals are agreed with the team manager, etc.
        managers = np.array([x.manager for x in TEAMS] + [SALES_DIRECTOR], dtype=object)
        scope = goals["scope"].to_numpy()
        key = goals["key"].to_numpy()
        owner = np.empty(n, dtype=object)
        agreed = np.empty(n, dtype=object)
        is_org, is_team = scope == Scope.ORGANISATION, scope == Scope.TEAM
        is_seller, is_cust = scope == Scope.SELLER, scope == Scope.CUSTOMER
        owner[is_org], agreed[is_org] = SALES_DIRECTOR, CEO
        owner[is_team] = managers[key[is_team]]
        agreed[is_team] = SALES_DIRECTOR
        owner[is_seller] = g.s_name[key[is_seller]]
        agreed[is_seller] = managers[g.s_team[key[is_seller]]]
        cust_owner = np.array(
            [self.account_owner.get(int(k), 0) for k in key[is_cust]], dtype=np.int64
        )
        owner[is_cust] = g.s_name[cust_owner]
        agreed[is_cust] = managers[g.s_team[cust_owner]]
        not_agreed = self.rng.random(n) < 0.03
        newest = int(np.argmax(np.where(g.s_to == col.NAT, g.s_from, col.NAT)))
        current = goals["start"].to_numpy() <= g.d1
        current &= goals["end"].to_numpy() > g.d1
        not_agreed |= is_seller & (key == newest) & current
        agreed[not_agreed] = None
        sid_seller = np.where(is_seller, key, -1)
        sid_cust = np.where(is_cust, key, -1)
        scope_id = col.ids("S", sid_seller, g.sw).fillna(col.ids("C", sid_cust, 7))
        team_names = np.array([x.name for x in TEAMS], dtype=object)
        scope_id = scope_id.where(
            ~is_team, pd.Series(team_names[np.where(is_team, key, 0)], dtype="str")
        )
        return col.frame(
            "goals",
            {
                "kpi": pd.Series(goals["kpi"].to_numpy(), dtype="str"),
                "scope": pd.Series(scope, dtype="str"),
                "scope_id": scope_id,
                "period": pd.Series(goals["period"].to_numpy(), dtype="str"),
                "target": goals["target"].to_numpy(),
                "direction": pd.Series(
                    np.where(goals["kpi"].isin(AT_MOST_KPIS), "at_most", "at_least"), dtype="str"
                ),
                "owner": pd.Series(owner, dtype="str"),
                "agreed_by": pd.Series(agreed, dtype="str"),
                "goal_id": col.ids("G", np.arange(n), 6),
            },
        )

    # -- targets: a monthly plan per scope, from which quarters and weeks are derived
    def _month_grid(self) -> tuple[int, int, int]:
        """First month key (d0), number of grid months (to next month) and the current month."""
        k0 = int(self._key(np.array([self.g.d0]), "month")[0])
        cur = int(self._key(np.array([self.g.d1]), "month")[0]) - k0
        return k0, cur + 2, cur

    def _monthly_plan(self, scope: str, kpi: str) -> np.ndarray:
        """Unrounded monthly targets ``(scope rows, grid months)`` (NaN: no plan).

        Set the way a planner does before the month starts, from complete
        months only: additive KPIs = the scope's deseasonalised mean month
        over the last :data:`LEVEL_MONTHS` complete months (smoother than one
        month last year, which matters for lumpy Enterprise deals) x the
        organisation's seasonal index of the month (:meth:`_season`) x the
        organisation's growth from the middle of that window to the month x
        a stretch in :data:`STRETCH`. Sellers use their own fully ramped
        months (their team's median without three of them); key customers'
        subscription revenue is planned flat (no season, no trend, ±4 %). Ratios = the pooled value
        of the same months x a small improvement (hit rate up 0–6 %, cycle
        and CAC from 6 % down to 2 % up).
        """
        g = self.g
        _, n_m, cur = self._month_grid()
        rng = self.rng
        rows = self._scope_pos(scope, np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))[1]
        plan = np.full((rows, n_m), np.nan)
        u = rng.random((rows, n_m))
        ratio = kpi in ("hit_rate", "sales_cycle_days", "cac")
        if ratio:
            if kpi == "hit_rate":
                num, den = (
                    self._sum("deals_won", scope, "month"),
                    self._sum("closed", scope, "month"),
                )
            elif kpi == "sales_cycle_days":
                num, den = (
                    self._sum("cycle", scope, "month"),
                    self._sum("deals_won", scope, "month"),
                )
            else:
                num, den = self._cac_parts()
        else:
            x = self._sum(kpi, scope, "month")
            org = self._sum(kpi, Scope.ORGANISATION, "month")[0]
        active = None
        if scope == Scope.SELLER:
            k0 = self._month_grid()[0]
            pos = np.searchsorted(g.month_keys, k0 + np.arange(n_m))
            pos = np.clip(pos, 0, g.month_keys.shape[0] - 1)
            full = g.exposure[:, pos] >= 0.9 * (g.me - g.ms)[pos][None, :]
            full &= (k0 + np.arange(n_m))[None, :] <= g.month_keys[pos][None, :]
            active = full & (g.ramp[:, pos] >= 1.0)
        for j in range(12, n_m):
            e = min(j, cur)  # months before e are complete when the plan is made
            if ratio:
                w = slice(e - LEVEL_MONTHS, e)
                with np.errstate(divide="ignore", invalid="ignore"):
                    base = num[:, w].sum(axis=1) / den[:, w].sum(axis=1)
                if kpi == "hit_rate":
                    plan[:, j] = np.minimum(base * (1.0 + 0.06 * u[:, j]), 0.95)
                else:
                    plan[:, j] = base * (0.94 + 0.08 * u[:, j])
                continue
            season = self._season(org, e) if scope != Scope.CUSTOMER else np.ones(12)
            months = np.arange(e - LEVEL_MONTHS, e)
            deseason = x[:, months] / season[months % 12][None, :]
            if active is not None:  # sellers: their own ramped months, else the team median
                act = active[:, months]
                n_act = act.sum(axis=1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    level = np.where(act, deseason, 0.0).sum(axis=1) / n_act
                level = np.where(n_act >= 3, level, np.nan)
                med = pd.Series(level).groupby(g.s_team).median()
                level = np.where(np.isnan(level), med.reindex(g.s_team).to_numpy(), level)
            else:
                level = deseason.mean(axis=1)
            stretch = STRETCH[0] + (STRETCH[1] - STRETCH[0]) * u[:, j]
            if scope == Scope.CUSTOMER:  # an account's subscriptions: flat, plus or minus a little
                plan[:, j] = level * (0.96 + 0.08 * u[:, j])
                continue
            plan[:, j] = level * season[j % 12] * self._trend(org, j, e) * stretch
        return plan

    @staticmethod
    def _season(org: np.ndarray, e: int) -> np.ndarray:
        """Seasonal index per calendar month from the organisation's months before ``e``.

        Each month over the mean of a 12-month window around it, averaged per
        calendar month, shrunk half-way to 1 (a planner does not trust one
        year's bump) and normalised to mean 1.
        """
        ratios: list[list[float]] = [[] for _ in range(12)]
        for i in range(e):
            lo = max(0, min(i - 6, e - 12))
            mean = org[lo : lo + 12].mean()
            if mean > 0:
                ratios[i % 12].append(org[i] / mean)
        raw = np.array([np.mean(r) if r else 1.0 for r in ratios])
        si = 1.0 + SEASON_SHRINK * (raw - 1.0)
        return si / si.mean()

    @staticmethod
    def _trend(org: np.ndarray, j: int, e: int) -> float:
        """Growth from the middle of the level window (before ``e``) to month ``j``."""
        if e >= 24 and org[e - 24 : e - 12].sum() > 0:
            yearly = org[e - 12 : e].sum() / org[e - 24 : e - 12].sum()
        else:
            yearly = 1.10
        yearly = float(np.clip(yearly, 0.95, 1.25))
        return yearly ** ((j - (e - (LEVEL_MONTHS + 1) / 2)) / 12)

    def _cac_parts(self) -> tuple[np.ndarray, np.ndarray]:
        """Monthly spend and new customers of the organisation (1 x grid months)."""
        g = self.g
        k0, n_m, _ = self._month_grid()
        won = g.d_status == 1
        first_won = pd.Series(g.d_closed[won]).groupby(g.d_company[won]).min().to_numpy()

        def by_month(days: np.ndarray, values: np.ndarray) -> np.ndarray:
            pp = self._key(days, "month") - k0
            ok = (pp >= 0) & (pp < n_m)
            return np.bincount(pp[ok], weights=values[ok], minlength=n_m)

        days_in_month = np.diff(np.append(g.ms, g.ms[-1] + 31))
        salary = (g.exposure / days_in_month[None, :] * g.s_cost[:, None]).sum(axis=0)
        spend = by_month(g.c_day, g.c_amount) + by_month(g.ms, salary)
        new = by_month(first_won, np.ones(first_won.shape[0]))
        return spend[None, :], new[None, :]

    def _goals_for(self, scope: str, grain: str, kpi: str) -> pd.DataFrame:
        """Goals of one (scope, grain, KPI): months from the plan, quarters = the sum of
        their months (ratios: the plan of the first month), weeks = the plan per
        working day of each day's month, summed over the week's working days."""
        g = self.g
        plan = self._monthly_plan(scope, kpi)
        k0m, n_m, _ = self._month_grid()
        periods = self._periods(grain)
        start = np.array([p[1] for p in periods])
        end = np.array([p[2] for p in periods])
        label = np.array([p[3] for p in periods], dtype=object)
        m_start = self._key(start, "month") - k0m
        ratio = kpi in ("hit_rate", "sales_cycle_days", "cac")
        if grain == "month" or ratio:
            per = plan[:, np.clip(m_start, 0, n_m - 1)]
        elif grain == "quarter":
            idx = np.clip(m_start[:, None] + np.arange(3)[None, :], 0, n_m - 1)
            per = plan[:, idx].sum(axis=2)
        else:
            k0d = self._month_grid()[0]
            m_bounds = np.arange(k0d, k0d + n_m + 1).astype("datetime64[M]").astype("datetime64[D]")
            workdays = np.busday_count(m_bounds[:-1], m_bounds[1:]).astype(float)
            days = start[:, None] + np.arange(5)[None, :]  # Mon..Fri of each week
            mi = np.clip(self._key(days.ravel(), "month") - k0m, 0, n_m - 1).reshape(days.shape)
            per = (plan[:, mi] / workdays[mi][None, :, :]).sum(axis=2)
        n_s = per.shape[0]
        sk = np.repeat(np.arange(n_s), len(periods))
        pi = np.tile(np.arange(len(periods)), n_s)
        if (
            scope == Scope.SELLER
        ):  # goals only for sellers in place (and ramped) at the period start
            ok = (g.s_from[sk] + 28 <= start[pi]) & (g.s_end[sk] >= start[pi]) & (start[pi] <= g.d1)
            sk, pi = sk[ok], pi[ok]
        target = per[sk, pi]
        if kpi == "hit_rate":
            target = np.round(target, 2)
        elif kpi == "cac":
            target = np.round(target, -1)
        elif kpi == "sales_cycle_days":
            target = np.round(target)
        elif kpi in ("revenue", "won_value"):
            step = np.where(target >= 50_000, 1000.0, 100.0)
            target = np.round(target / step) * step
        else:
            target = np.where(np.isfinite(target), np.maximum(np.ceil(target - 0.25), 1.0), target)
        keep = np.isfinite(target) & (target > 0)
        return pd.DataFrame(
            {
                "kpi": kpi,
                "scope": str(scope),
                "key": (self.key_customers[sk] if scope == Scope.CUSTOMER else sk)[keep],
                "period": label[pi[keep]],
                "start": start[pi[keep]],
                "end": end[pi[keep]],
                "target": target[keep],
            }
        )
