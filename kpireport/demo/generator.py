"""The demo CRM simulator: sellers, companies, leads, deals, activities, revenue and costs.

:func:`generate_demo` runs one :class:`Simulation` of the company described in
:mod:`kpireport.demo.company` over three full calendar years before the
``as_of`` year plus that year up to and including ``as_of``, and returns every
canonical table (goals come from :mod:`kpireport.demo.goals`).

Design decisions
----------------
* **Generated as a process, not as independent columns.** Sellers join (with a
  three-month ramp-up) and leave; their active days per month times a team
  rate, a growth trend and a monthly season give Poisson lead counts per
  seller-month; leads get a source, are sales-qualified (``qualified_at``) with
  a per-source probability, and some become deals; other deals (upsell,
  renewals) have no lead. Each deal gets a team-typical value and sales cycle,
  then a close date that is *moved* the way real closes move
  (:func:`kpireport.demo.seasonality.move_closes`). Deals whose close date is
  after ``as_of`` are open, with a stage and probability from their progress;
  a few old lost-to-be deals stay open as stale "zombies".
* **Fully vectorised.** Every row-level quantity is drawn with numpy on whole
  arrays; the only Python loops run over teams, sellers or periods (a few
  hundred iterations at most). Counts per seller-month are expanded to rows
  with ``np.repeat``; ids and labels are built by :mod:`kpireport.demo.columns`.
* **Deterministic.** One ``numpy.random.Generator`` per part, spawned from
  ``SeedSequence(seed)``, always consumed in the same order; nothing reads the
  clock (``as_of`` is a parameter). Moving code between the modules of this
  package must keep the order of the draws: ``tests/test_demo.py`` pins the
  fingerprint of the default data.
* **Scale.** ``scale`` multiplies the number of sellers (per team) and the pool
  of pre-existing companies; leads, deals, activities and revenue follow the
  sellers, so every table grows linearly. At ``scale=1`` there are about 24
  sellers and 11 k deals; :data:`BENCHMARK_SCALE` (90) gives ~1 M deals and ~5 M
  activities.
* **Hand-overs.** When a seller leaves, their open deals, later activities and
  later invoices go to the most senior colleague of the same team who stays;
  the deal keeps its creator's history (activities before the hand-over keep
  the original seller).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from kpireport.demo import columns as col
from kpireport.demo import names
from kpireport.demo import seasonality as cal
from kpireport.demo.company import (
    ACTIVITY_TYPES,
    CURRENCY,
    DEAL_ACTIVITY_MIX,
    PROSPECTING_MIX,
    SOURCE_DEAL,
    SOURCE_QUALIFY,
    SOURCE_WEEKEND,
    SOURCE_WIN,
    SOURCES,
    STAGE_PROBABILITY,
    STAGES,
    TEAMS,
)
from kpireport.demo.goals import GoalSetter
from kpireport.demo.names import INDUSTRIES
from kpireport.demo.seasonality import PRICE_GROWTH, PRODUCTIVITY_GROWTH, SEASON

#: the seed of the demo everywhere: `kpireport demo`, `kpireport demo-data`, the notebooks
DEFAULT_SEED = 7
DEFAULT_AS_OF = "2026-11-30"
#: scale at which the demo has about 1 M deals and 5 M activities
BENCHMARK_SCALE = 90.0
TABLES = ("sellers", "companies", "leads", "deals", "activities", "revenue", "costs", "goals")


# --------------------------------------------------------------------------- public API
def generate_demo(
    seed: int = DEFAULT_SEED,
    scale: float = 1.0,
    as_of: dt.date | pd.Timestamp | str = DEFAULT_AS_OF,
) -> dict[str, pd.DataFrame]:
    """Generate every canonical table of a realistic demo CRM.

    Parameters
    ----------
    seed
        Random seed; the same seed, scale and ``as_of`` give identical frames.
    scale
        Multiplies the number of sellers and companies and so every row count.
        ``1`` gives ~24 sellers and ~11 k deals; :data:`BENCHMARK_SCALE` ~1 M
        deals and ~5 M activities.
    as_of
        Last day of data. The data starts on 1 January three years earlier.

    Returns
    -------
    dict of str to DataFrame
        ``sellers, companies, leads, deals, activities, revenue, costs, goals``
        with the canonical columns of :mod:`kpireport.data.schema` in canonical
        dtypes (ids ``str``, dates naive ``datetime64[ns]``, numbers ``float64``).
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale!r}")
    day = pd.Timestamp(as_of).normalize()
    g = Simulation(int(seed), float(scale), day)
    return g.run()


# --------------------------------------------------------------------------- generator
class Simulation:
    """One generation run; each ``_make_*`` step adds arrays to ``self``."""

    def __init__(self, seed: int, scale: float, as_of: pd.Timestamp) -> None:
        self.scale = scale
        self.as_of = as_of
        self.d0 = int(np.datetime64(f"{as_of.year - 3}-01-01", "D").astype(np.int64))
        self.d1 = int(np.datetime64(as_of.date(), "D").astype(np.int64))
        # generation starts half a year early so that January of the first year
        # already has a pipeline; rows dated before d0 are dropped at the end
        months = np.arange(
            np.datetime64(f"{as_of.year - 4}-07", "M"), np.datetime64(as_of.date(), "M") + 1
        )
        self.month_keys = months.astype(np.int64)
        self.ms = months.astype("datetime64[D]").astype(np.int64)  # month starts
        self.me = np.minimum((months + 1).astype("datetime64[D]").astype(np.int64), self.d1 + 1)
        self.month_of_year = (self.month_keys % 12).astype(np.int64)  # 0 = January
        self.growth = (1 + PRODUCTIVITY_GROWTH) ** ((self.ms - self.d0) / 365.25)
        streams = np.random.SeedSequence(seed).spawn(9)
        self.rng = {
            name: np.random.default_rng(s)
            for name, s in zip(
                (
                    "sellers",
                    "leads",
                    "deals",
                    "close",
                    "activities",
                    "revenue",
                    "costs",
                    "goals",
                    "companies",
                ),
                streams,
                strict=True,
            )
        }
        t = TEAMS
        self.t_median = np.array([x.deal_median for x in t])
        self.t_sigma = np.array([x.deal_sigma for x in t])
        self.t_round = np.array([x.value_round for x in t])
        self.t_cycle = np.array([x.cycle_median for x in t])
        self.t_win = np.array([x.win_rate for x in t])
        self.t_sub = np.array([x.subscription_share for x in t])
        self.t_churn = np.array([x.churn for x in t])
        self.t_apd = np.array([x.activities_per_deal for x in t])
        self.t_prospect = np.array([x.prospecting_per_day for x in t])
        self.t_mix = np.array([x.source_mix for x in t])
        self.t_lead_conv = self.t_mix @ (SOURCE_QUALIFY * SOURCE_DEAL)

    def run(self) -> dict[str, pd.DataFrame]:
        self._make_sellers()
        self._make_leads()
        self._make_deals()
        self._make_activities()
        self._make_revenue()
        self._make_costs()
        tables = {
            "sellers": self.sellers_df,
            "companies": self._companies_df(),
            "leads": self.leads_df,
            "deals": self.deals_df,
            "activities": self.activities_df,
            "revenue": self.revenue_df,
            "costs": self.costs_df,
        }
        tables["goals"] = self._make_goals()
        return tables

    # ------------------------------------------------------------------ sellers
    def _make_sellers(self) -> None:
        rng = self.rng["sellers"]
        span = self.d1 - self.d0
        team, af, at = [], [], []
        for ti, prof in enumerate(TEAMS):
            n = max(2, round(prof.sellers * self.scale))
            n_join = max(1, round(0.30 * n))
            n_leave = max(1, round(0.17 * n)) if n >= 3 else 0
            start = self.d0 - rng.integers(90, 7 * 365, n)
            # joiners come later more often (growth); start on the 1st of a month
            join_day = self.d0 + 60 + (np.sqrt(rng.random(n_join)) * (span - 150)).astype(np.int64)
            start[:n_join] = (
                cal.month_index(join_day)
                .astype("datetime64[M]")
                .astype("datetime64[D]")
                .astype(np.int64)
            )
            end = np.full(n, col.NAT)
            leave_day = self.d0 + 200 + rng.integers(0, span - 260, n_leave)
            leave_end = (cal.month_index(leave_day) + 1).astype("datetime64[M]").astype(
                "datetime64[D]"
            ).astype(np.int64) - 1
            end[n_join : n_join + n_leave] = leave_end
            team.append(np.full(n, ti))
            af.append(start)
            at.append(end)
        team_a, af_a, at_a = np.concatenate(team), np.concatenate(af), np.concatenate(at)
        order = np.lexsort((team_a, af_a))  # hire order -> seller ids
        self.s_team, self.s_from, self.s_to = team_a[order], af_a[order], at_a[order]
        n = self.s_team.shape[0]
        self.sw = max(3, len(str(n)))  # seller id digits
        # Björn Åkesson is the longest-serving seller: index 0 has first and last name 0
        i = np.arange(n)
        self.s_name = names.seller_names(n)
        base_cost = np.array([x.monthly_cost for x in TEAMS])[self.s_team]
        self.s_cost = np.round(base_cost * rng.uniform(0.85, 1.2, n), -1)
        self.s_end = np.where(
            self.s_to == col.NAT, self.d1, self.s_to
        )  # last active day within data
        # successor: the most senior colleague of the same team who never leaves
        stays = self.s_to == col.NAT
        self.successor = np.arange(n)
        for ti in range(len(TEAMS)):
            cand = np.flatnonzero(stays & (self.s_team == ti))
            if cand.size == 0:
                cand = np.flatnonzero(stays)
            senior = cand[np.argmin(self.s_from[cand])]
            leavers = np.flatnonzero(~stays & (self.s_team == ti))
            self.successor[leavers] = senior
        # active days per seller-month and a three-month ramp-up for new sellers
        lo = np.maximum(self.ms[None, :], self.s_from[:, None])
        hi = np.minimum(self.me[None, :], self.s_end[:, None] + 1)
        self.lo, self.hi = lo, hi
        self.exposure = np.clip(hi - lo, 0, None).astype(float)
        tenure = (self.ms[None, :] - self.s_from[:, None]) / 30.44
        self.ramp = np.clip((tenure + 1) / 4, 0.25, 1.0)
        self.sellers_df = col.frame(
            "sellers",
            {
                "seller_id": col.ids("S", i, self.sw),
                "name": pd.Series(self.s_name, dtype="str"),
                "team": col.labels(self.s_team, [x.name for x in TEAMS]),
                "monthly_cost": self.s_cost,
                "active_from": col.dates(self.s_from),
                "active_to": col.dates(self.s_to),
            },
        )

    def _volume(self, per_month: np.ndarray) -> np.ndarray:
        """Expected events per seller-month for a per-seller monthly rate by team."""
        return (
            self.exposure / 30.44 * self.ramp * SEASON[self.month_of_year][None, :]
            * self.growth[None, :] * per_month[self.s_team][:, None]
        )  # fmt: skip

    def _days_in_cells(self, rng, seller: np.ndarray, month: np.ndarray) -> np.ndarray:
        lo, hi = self.lo[seller, month], self.hi[seller, month]
        return lo + (rng.random(seller.shape[0]) * (hi - lo)).astype(np.int64)

    # ------------------------------------------------------------------ leads and companies
    def _make_leads(self) -> None:
        rng = self.rng["leads"]
        dpm = np.array([x.deals_per_month for x in TEAMS])
        nls = np.array([x.no_lead_share for x in TEAMS])
        lam = self._volume(dpm * (1 - nls) / self.t_lead_conv)
        counts = rng.poisson(lam)
        seller, month = np.divmod(
            np.repeat(np.arange(counts.size), counts.ravel()), counts.shape[1]
        )
        source = col.choice_rows(rng, self.t_mix, self.s_team[seller])
        day = self._days_in_cells(rng, seller, month)
        day = cal.to_workday(
            day, SOURCE_WEEKEND[source], rng, self.lo[seller, month], self.hi[seller, month] - 1
        )
        order = np.lexsort((seller, day))
        seller, day, source = seller[order], day[order], source[order]
        n = day.shape[0]
        # companies: ~78 % of leads are a new prospect, the rest an existing company
        n_pre = max(50, round(600 * self.scale))
        is_new = rng.random(n) < 0.78
        new_before = np.cumsum(is_new) - is_new
        existing = (rng.random(n) * (n_pre + new_before)).astype(np.int64)
        company = np.where(is_new, n_pre + new_before, existing)
        self.n_pre = n_pre
        self.newco_lead_day = day[is_new]
        self.n_companies = n_pre + int(is_new.sum())
        qual = rng.random(n) < SOURCE_QUALIFY[source]
        q_day = day + 1 + rng.gamma(2.0, 6.0, n).astype(np.int64)
        q_day = cal.to_workday(q_day, 0.0, rng, day + 1, q_day + 2)
        qual &= q_day <= self.d1
        self.l_day, self.l_seller, self.l_source, self.l_company = day, seller, source, company
        self.l_qual, self.l_qday = qual, np.where(qual, q_day, col.NAT)

    def _leads_df(self, keep: np.ndarray) -> pd.DataFrame:
        n = int(keep.sum())
        return col.frame(
            "leads",
            {
                "lead_id": col.ids("L", np.arange(n), 7),
                "created_at": col.dates(self.l_day[keep]),
                "company_id": col.ids("C", self.l_company[keep], 7),
                "seller_id": col.ids("S", self.l_seller[keep], self.sw),
                "source": col.labels(self.l_source[keep], SOURCES),
                "qualified_at": col.dates(self.l_qday[keep]),
            },
        )

    def _companies_df(self) -> pd.DataFrame:
        rng = self.rng["companies"]
        n_new = self.newco_lead_day.shape[0]
        n = self.n_pre + n_new
        created = np.empty(n, dtype=np.int64)
        created[: self.n_pre] = self.d0 - rng.integers(30, 10 * 365, self.n_pre)
        created[self.n_pre :] = self.newco_lead_day - rng.integers(0, 4, n_new)
        # Finnish business ids: 7 digits + check digit, some with leading zeros; unique
        i = np.arange(n, dtype=np.int64)
        body = (i * 7_654_321 + 1_234_567) % 10_000_000
        check = (body * 7 + 3) % 10
        body_s = pc.utf8_lpad(pa.array(body).cast(pa.string()), 7, padding="0")
        org = pc.binary_join_element_wise(body_s, pa.array(check).cast(pa.string()), "-")
        name = names.company_names(rng, n)
        return col.frame(
            "companies",
            {
                "company_id": col.ids("C", i, 7),
                "org_number": pd.Series(pd.array(org, dtype="str")),
                "name": name,
                "industry": col.labels(rng.integers(0, len(INDUSTRIES), n), INDUSTRIES),
                "created_at": col.dates(created),
            },
        )

    # ------------------------------------------------------------------ deals
    def _make_deals(self) -> None:
        rng = self.rng["deals"]
        # deals from qualified leads
        lead = np.flatnonzero(
            self.l_qual & (rng.random(self.l_qual.shape[0]) < SOURCE_DEAL[self.l_source])
        )
        lday = self.l_qday[lead] + rng.integers(0, 8, lead.shape[0])
        lday = cal.to_workday(lday, 0.0, rng, self.l_qday[lead], lday + 2)
        keep = lday <= self.d1
        lead, lday = lead[keep], lday[keep]
        # deals without a lead: upsell and renewals at existing companies
        dpm = np.array([x.deals_per_month for x in TEAMS])
        nls = np.array([x.no_lead_share for x in TEAMS])
        counts = rng.poisson(self._volume(dpm * nls))
        nseller, nmonth = np.divmod(
            np.repeat(np.arange(counts.size), counts.ravel()), counts.shape[1]
        )
        nday = self._days_in_cells(rng, nseller, nmonth)
        nday = cal.to_workday(
            nday, 0.0, rng, self.lo[nseller, nmonth], self.hi[nseller, nmonth] - 1
        )
        known = self.n_pre + np.searchsorted(self.newco_lead_day, nday, side="left")
        ncompany = np.where(
            rng.random(nday.shape[0]) < 0.5,
            (rng.random(nday.shape[0]) * self.n_pre).astype(np.int64),
            (rng.random(nday.shape[0]) * known).astype(np.int64),
        )
        created = np.concatenate([lday, nday])
        seller0 = np.concatenate([self.l_seller[lead], nseller])
        company = np.concatenate([self.l_company[lead], ncompany])
        lead_idx = np.concatenate([lead, np.full(nday.shape[0], -1)])
        win_mult = np.concatenate([SOURCE_WIN[self.l_source[lead]], np.full(nday.shape[0], 1.3)])
        order = np.lexsort((seller0, created))
        created, seller0, company, lead_idx, win_mult = (
            a[order] for a in (created, seller0, company, lead_idx, win_mult)
        )
        n = created.shape[0]
        team = self.s_team[seller0]
        years = (created - self.d0) / 365.25
        raw = np.exp(np.log(self.t_median[team]) + self.t_sigma[team] * rng.standard_normal(n))
        value = (
            np.maximum(np.round(raw * (1 + PRICE_GROWTH) ** years / self.t_round[team]), 1)
            * self.t_round[team]
        )
        win = rng.random(n) < np.clip(self.t_win[team] * win_mult, 0.02, 0.9)
        cycle = np.exp(np.log(self.t_cycle[team]) + 0.5 * rng.standard_normal(n))
        cycle = np.clip(np.where(win, cycle, 0.8 * cycle), 3, 400).astype(np.int64)
        planned = created + cycle
        close = cal.move_closes(planned, created, self.rng["close"])
        closed = close <= self.d1
        zombie = (
            closed & ~win & (close < self.d1 - 90) & (close >= self.d0) & (rng.random(n) < 0.03)
        )
        closed &= ~zombie
        status = np.where(closed, np.where(win, 1, 2), 0)  # 0 open, 1 won, 2 lost
        # open deals: stage from progress; a seller-maintained expected close date
        progress = (self.d1 - created) / np.maximum(close - created, 1)
        stage = np.select([progress < 0.25, progress < 0.5, progress < 0.8], [0, 1, 2], 3)
        stage = np.where(zombie, np.where(rng.random(n) < 0.5, 0, 2), stage)
        stage = np.where(status == 1, 4, np.where(status == 2, 5, stage))
        expected = close + np.round(rng.normal(0, 7, n)).astype(np.int64)
        expected = np.maximum(expected, self.d1 + 1)
        stale = rng.random(n) < 0.12
        expected = np.where(
            stale, np.maximum(self.d1 - rng.integers(1, 45, n), created + 1), expected
        )
        expected = np.where(zombie, planned, expected)
        expected = np.where(closed, np.minimum(planned, self.d1), expected)
        self.d_closed = np.where(closed, close, col.NAT)
        end = np.where(closed, close, self.d1)
        handover = end > self.s_end[seller0]
        seller = np.where(handover, self.successor[seller0], seller0)
        self.d_created, self.d_end, self.d_seller0, self.d_seller = created, end, seller0, seller
        self.d_company, self.d_value, self.d_status, self.d_team = company, value, status, team
        # keep deals created in the data span, or created before it and closed in it (or open)
        keep = (created >= self.d0) | (end >= self.d0)
        self.deal_map = np.where(keep, np.cumsum(keep) - 1, -1)
        lead_keep = self.l_day >= self.d0
        lead_keep[lead_idx[keep & (lead_idx >= 0)]] = True
        lead_map = np.where(lead_keep, np.cumsum(lead_keep) - 1, -1)
        self.leads_df = self._leads_df(lead_keep)
        lead_new = np.where(lead_idx >= 0, lead_map[np.maximum(lead_idx, 0)], -1)
        k = keep
        self.deals_df = col.frame(
            "deals",
            {
                "deal_id": col.ids("D", np.arange(int(k.sum())), 7),
                "seller_id": col.ids("S", seller[k], self.sw),
                "created_at": col.dates(created[k]),
                "status": col.labels(status[k], ("open", "won", "lost")),
                "value": value[k],
                "company_id": col.ids("C", company[k], 7),
                "lead_id": col.ids("L", lead_new[k], 7),
                "stage": col.labels(stage[k], STAGES),
                "probability": STAGE_PROBABILITY[stage[k]],
                "closed_at": col.dates(self.d_closed[k]),
                "expected_close_at": col.dates(expected[k]),
                "currency": col.labels(np.zeros(int(k.sum()), dtype=np.int32), (CURRENCY,)),
            },
        )

    # ------------------------------------------------------------------ activities
    def _make_activities(self) -> None:
        rng = self.rng["activities"]
        length = self.d_end - self.d_created
        rel = np.clip(length / self.t_cycle[self.d_team], 0.3, 1.6)
        counts = 1 + rng.poisson((self.t_apd[self.d_team] - 1) * rel)
        deal, pos = col.expand(counts)
        day = self.d_created[deal] + (rng.random(deal.shape[0]) * (length[deal] + 1)).astype(
            np.int64
        )
        day = np.where(pos == 0, self.d_created[deal], day)
        day = cal.to_workday(day, 0.02, rng, self.d_created[deal], self.d_end[deal])
        kind = col.choice_rows(
            rng, DEAL_ACTIVITY_MIX[None, :], np.zeros(deal.shape[0], dtype=np.int64)
        )
        kind = np.where(pos == 0, 2, kind)  # every deal starts with a meeting
        s0 = self.d_seller0[deal]
        seller = np.where(day > self.s_end[s0], self.successor[s0], s0)
        # prospecting: calls and e-mails to companies without a deal
        counts = rng.poisson(
            self.exposure * self.ramp * 5 / 7 * self.t_prospect[self.s_team][:, None]
        )
        pseller, pmonth = np.divmod(
            np.repeat(np.arange(counts.size), counts.ravel()), counts.shape[1]
        )
        pday = self._days_in_cells(rng, pseller, pmonth)
        pday = cal.to_workday(
            pday, 0.01, rng, self.lo[pseller, pmonth], self.hi[pseller, pmonth] - 1
        )
        known = self.n_pre + np.searchsorted(self.newco_lead_day, pday, side="left")
        pcompany = (rng.random(pday.shape[0]) * known).astype(np.int64)
        pkind = col.choice_rows(
            rng, PROSPECTING_MIX[None, :], np.zeros(pday.shape[0], dtype=np.int64)
        )
        all_day = np.concatenate([day, pday])
        all_seller = np.concatenate([seller, pseller])
        all_kind = np.concatenate([kind, pkind])
        all_company = np.concatenate([self.d_company[deal], pcompany])
        all_deal = np.concatenate([self.deal_map[deal], np.full(pday.shape[0], -1)])
        # working hours 08:00-17:00 in 5-minute steps; meetings on the half hour
        n = all_day.shape[0]
        seconds = rng.integers(8 * 12, 17 * 12, n) * 300
        seconds = np.where(all_kind == 2, seconds // 1800 * 1800, seconds)
        sort_key = ((all_day - self.ms[0]) * self.s_team.shape[0] + all_seller) * 86_400 + seconds
        order = np.argsort(sort_key, kind="stable")
        order = order[all_day[order] >= self.d0]
        n = order.shape[0]
        all_day, all_seller, all_kind, all_company, all_deal, seconds = (
            a[order] for a in (all_day, all_seller, all_kind, all_company, all_deal, seconds)
        )
        self.a_day, self.a_seller, self.a_kind, self.a_company = (
            all_day,
            all_seller,
            all_kind,
            all_company,
        )
        self.activities_df = col.frame(
            "activities",
            {
                "activity_id": col.ids("A", np.arange(n), 8),
                "seller_id": col.ids("S", all_seller, self.sw),
                "type": col.labels(all_kind, ACTIVITY_TYPES),
                "occurred_at": col.dates(all_day, seconds),
                "company_id": col.ids("C", all_company, 7),
                "deal_id": col.ids("D", all_deal, 7),
            },
        )

    # ------------------------------------------------------------------ revenue
    def _make_revenue(self) -> None:
        rng = self.rng["revenue"]
        won = np.flatnonzero(self.d_status == 1)
        nw = won.shape[0]
        sub = rng.random(nw) < self.t_sub[self.d_team[won]]
        # one-off deals: one invoice (licence or services) within three weeks of closing
        one = won[~sub]
        o_day = self.d_closed[one] + rng.integers(0, 21, one.shape[0])
        o_day = cal.to_workday(o_day, 0.0, rng, o_day - 2, o_day + 2)
        o_product = np.where(rng.random(one.shape[0]) < 0.7, 0, 1)
        parts = [
            (o_day, self.d_value[one], self.d_seller0[one], self.d_company[one], one, o_product)
        ]
        # subscriptions (value = annual contract value), billed monthly or quarterly until churn
        s = won[sub]
        parts.append(self._subscriptions(rng, self.d_closed[s], self.d_value[s], self.d_seller0[s],
                                         self.d_company[s], s, self.d_team[s]))  # fmt: skip
        # customers from before the data starts (no deal in the CRM export)
        at_start = np.flatnonzero((self.s_from <= self.d0) & (self.s_end >= self.d0))
        n_leg = max(10, round(0.7 * self.n_pre))
        l_seller = at_start[rng.integers(0, at_start.shape[0], n_leg)]
        l_team = self.s_team[l_seller]
        l_acv = np.round(
            np.exp(
                np.log(self.t_median[l_team]) + self.t_sigma[l_team] * rng.standard_normal(n_leg)
            ),
            -1,
        )
        l_first = self.d0 - rng.integers(0, 90, n_leg)
        parts.append(self._subscriptions(rng, l_first, l_acv, l_seller, np.arange(n_leg),
                                         np.full(n_leg, -1), l_team, legacy=True))  # fmt: skip
        day, amount, seller0, company, deal, product = (
            np.concatenate(x) for x in zip(*parts, strict=True)
        )
        keep = (day <= self.d1) & (day >= self.d0)
        day, amount, seller0, company, deal, product = (
            a[keep] for a in (day, amount, seller0, company, deal, product)
        )
        # credit notes: ~3 % of invoices partly or fully credited a few weeks later
        cn = np.flatnonzero(rng.random(day.shape[0]) < 0.03)
        share = np.array([1.0, 0.5, 0.25, 0.1])[rng.integers(0, 4, cn.shape[0])]
        c_day = day[cn] + rng.integers(5, 45, cn.shape[0])
        c_keep = c_day <= self.d1
        cn, share, c_day = cn[c_keep], share[c_keep], c_day[c_keep]
        is_credit = np.concatenate([np.zeros(day.shape[0], bool), np.ones(cn.shape[0], bool)])
        day = np.concatenate([day, c_day])
        amount = np.concatenate([amount, -np.round(amount[cn] * share, 2)])
        seller0, company, deal, product = (
            np.concatenate([a, a[cn]]) for a in (seller0, company, deal, product)
        )
        seller = np.where(day > self.s_end[seller0], self.successor[seller0], seller0)
        deal = np.where(deal >= 0, self.deal_map[np.maximum(deal, 0)], -1)
        order = np.lexsort((company, day))
        day, amount, seller, company, deal, product, is_credit = (
            a[order] for a in (day, amount, seller, company, deal, product, is_credit)
        )
        n = day.shape[0]
        ids = np.where(is_credit, -1, np.cumsum(~is_credit) - 1)
        cids = np.where(is_credit, np.cumsum(is_credit) - 1, -1)
        invoice = col.ids("INV", ids, 7).fillna(col.ids("CN", cids, 6))
        self.r_day, self.r_amount, self.r_seller, self.r_company = day, amount, seller, company
        self.revenue_df = col.frame(
            "revenue",
            {
                "invoice_id": invoice,
                "company_id": col.ids("C", company, 7),
                "date": col.dates(day),
                "amount": amount,
                "product": col.labels(product, ("Licence", "Services", "Subscription")),
                "seller_id": col.ids("S", seller, self.sw),
                "deal_id": col.ids("D", deal, 7),
                "currency": col.labels(np.zeros(n, dtype=np.int32), (CURRENCY,)),
            },
        )

    def _subscriptions(self, rng, start, acv, seller, company, deal, team, legacy: bool = False):
        """Invoice rows of recurring subscriptions from ``start`` until churn or ``as_of``."""
        m = start.shape[0]
        freq = np.where(rng.random(m) < 0.7, 1, 3)
        first = start + (0 if legacy else rng.integers(0, 14, m))
        lifetime = rng.geometric(self.t_churn[team])  # months until the customer stops
        first_month = cal.month_index(first)
        months_left = cal.month_index(np.full(m, self.d1)) - first_month
        n_inv = np.minimum(-(-lifetime // freq), months_left // freq + 1)
        n_inv = np.maximum(n_inv, 0)
        idx, pos = col.expand(n_inv)
        month = first_month[idx] + pos * freq[idx]
        dom = np.minimum(
            first[idx]
            - first_month[idx].astype("datetime64[M]").astype("datetime64[D]").astype(np.int64),
            27,
        )
        day = month.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) + dom
        years = pos * freq[idx] // 12
        amount = np.round(acv[idx] / 12 * freq[idx] * 1.03**years, 2)
        return day, amount, seller[idx], company[idx], deal[idx], np.full(idx.shape[0], 2)

    # ------------------------------------------------------------------ costs
    def _make_costs(self) -> None:
        rng = self.rng["costs"]
        nm, nt = self.ms.shape[0], len(TEAMS)
        season = SEASON[self.month_of_year]
        rows: list[tuple[np.ndarray, ...]] = []
        mkt = np.array([x.marketing for x in TEAMS])
        month = np.repeat(np.arange(nm), nt)
        team = np.tile(np.arange(nt), nm)
        # team marketing (campaigns follow the season), sales tools per active seller, events
        amount = (
            mkt[team]
            * self.scale
            * self.growth[month]
            * season[month]
            * rng.uniform(0.8, 1.2, nm * nt)
        )
        rows.append((self.ms[month], amount, np.zeros(nm * nt, int), team))
        seats = np.zeros((nt, nm))
        for ti in range(nt):
            seats[ti] = (self.exposure[self.s_team == ti] > 0).sum(axis=0)
        rows.append((self.ms[month], 145.0 * seats[team, month], np.ones(nm * nt, int), team))
        moy = self.month_of_year[month]
        ev = np.isin(moy, (2, 3, 4, 8, 9, 10)) & (rng.random(nm * nt) < 0.6)
        ev_day = self.ms[month] + rng.integers(0, 28, nm * nt)
        ev_amount = rng.uniform(6_000, 30_000, nm * nt) * self.scale
        rows.append((ev_day[ev], ev_amount[ev], np.full(ev.sum(), 2), team[ev]))
        # organisation-wide: brand marketing, CRM and data subscriptions, the October conference
        m = np.arange(nm)
        rows.append(
            (
                self.ms,
                22_000 * self.scale * self.growth * rng.uniform(0.85, 1.15, nm),
                np.zeros(nm, int),
                np.full(nm, -1),
            )
        )
        rows.append((self.ms, 6_500 * self.scale * np.ones(nm), np.full(nm, 3), np.full(nm, -1)))
        octo = m[self.month_of_year == 9]
        rows.append(
            (
                self.ms[octo] + 14,
                65_000 * self.scale * self.growth[octo],
                np.full(octo.shape[0], 2),
                np.full(octo.shape[0], -1),
            )
        )
        day, amount, cat, team = (np.concatenate(x) for x in zip(*rows, strict=True))
        keep = (day <= self.d1) & (day >= self.d0)
        day, amount, cat, team = day[keep], np.round(amount[keep], 2), cat[keep], team[keep]
        order = np.lexsort((cat, team, day))
        day, amount, cat, team = day[order], amount[order], cat[order], team[order]
        self.c_day, self.c_amount = day, amount
        self.costs_df = col.frame(
            "costs",
            {
                "date": col.dates(day),
                "category": col.labels(cat, ("marketing", "sales", "events", "other")),
                "amount": amount,
                "team": col.labels(team, [x.name for x in TEAMS]),
                "currency": col.labels(np.zeros(day.shape[0], dtype=np.int32), (CURRENCY,)),
            },
        )

    # ------------------------------------------------------------------ goals
    def _make_goals(self) -> pd.DataFrame:
        return GoalSetter(self).run()
