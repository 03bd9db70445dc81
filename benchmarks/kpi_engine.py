"""Benchmark: every KPI for every seller × 36 months, kpireport vs the same in DuckDB SQL.

Run::

    .venv/bin/python benchmarks/kpi_engine.py [--scale 80] [--months 36] [--cache DIR]

Generates the scaled demo (``kpireport.data.demo``, ~1 M deals and ~5 M
activities at the default scale; ``--cache`` keeps it as Parquet between
runs), then times

* **kpireport cold**: ``compute_kpis(data, 36 months, by="seller")`` on a
  fresh ``CrmData`` (includes the one-off integer coding of ids);
* **kpireport warm**: the same call again (codes cached per dataset);
* **DuckDB**: the same aggregations written as SQL over the same tables
  (registered as Arrow tables before the clock starts), results fetched as
  pandas DataFrames;

and prints both times, the ratio and the peak RSS of the process. DuckDB is a
benchmark-only dependency (``pip install kpireport[bench]``).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from kpireport.data.model import CrmData
from kpireport.kpis import compute_kpis
from kpireport.periods import period_range

AS_OF = "2026-11-30"


def peak_rss_gb() -> float:
    """Peak resident set size of this process (GB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def load_demo(scale: float, cache: Path | None) -> CrmData:
    """The scaled demo, from a Parquet cache when one exists."""
    from kpireport.data.demo import CURRENCY, TIMEZONE, generate_demo

    if cache is not None and (cache / "deals.parquet").exists():
        tables = {p.stem: pd.read_parquet(p) for p in cache.glob("*.parquet")}
        for df in tables.values():
            for c in df.columns:
                if df[c].dtype.kind == "M":
                    df[c] = df[c].astype("datetime64[ns]")
    else:
        tables = generate_demo(seed=7, scale=scale, as_of=AS_OF)
        if cache is not None:
            cache.mkdir(parents=True, exist_ok=True)
            for name, df in tables.items():
                df.to_parquet(cache / f"{name}.parquet")
    tables.pop("goals", None)
    return CrmData(tables, timezone=TIMEZONE, currency=CURRENCY, settings={"gross_margin": 0.8})


SQL = r"""
CREATE OR REPLACE TEMP TABLE months AS
  SELECT m AS ms, m + INTERVAL 1 MONTH AS me FROM range(TIMESTAMP '{start}', TIMESTAMP '{end}', INTERVAL 1 MONTH) t(m);
CREATE OR REPLACE TEMP TABLE s AS SELECT seller_id, team, monthly_cost,
  coalesce(active_from, TIMESTAMP '1900-01-01') AS a_from,
  coalesce(active_to + INTERVAL 1 DAY, TIMESTAMP '2200-01-01') AS a_to FROM sellers;
-- leads: new_leads, sql, lead_conversion
CREATE OR REPLACE TEMP TABLE won_leads AS
  SELECT DISTINCT lead_id FROM deals WHERE status = 'won' AND closed_at < TIMESTAMP '{cutoff}' AND lead_id IS NOT NULL;
CREATE OR REPLACE TEMP TABLE r_leads AS
  SELECT seller_id, date_trunc('month', created_at) AS ms, count(*) AS new_leads,
         count(w.lead_id) / count(*) AS lead_conversion
  FROM leads l LEFT JOIN won_leads w USING (lead_id)
  WHERE created_at >= TIMESTAMP '{start}' AND created_at < TIMESTAMP '{cutoff}' GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE r_sql AS
  SELECT seller_id, date_trunc('month', qualified_at) AS ms, count(*) AS sql FROM leads
  WHERE qualified_at >= TIMESTAMP '{start}' AND qualified_at < TIMESTAMP '{cutoff}' GROUP BY ALL;
-- closed deals
CREATE OR REPLACE TEMP TABLE r_deals AS
  SELECT seller_id, date_trunc('month', closed_at) AS ms,
    count(*) FILTER (status = 'won') AS deals_won,
    count(*) FILTER (status = 'lost') AS deals_lost,
    sum(value) FILTER (status = 'won') AS won_value,
    avg(value) FILTER (status = 'won') AS avg_deal_value,
    count(*) FILTER (status = 'won') / nullif(count(*) FILTER (status IN ('won', 'lost')), 0) AS hit_rate,
    avg(epoch(closed_at - created_at) / 86400) FILTER (status = 'won') AS sales_cycle_days,
    median(epoch(closed_at - created_at) / 86400) FILTER (status = 'won') AS sales_cycle_days_median
  FROM deals WHERE closed_at >= TIMESTAMP '{start}' AND closed_at < TIMESTAMP '{cutoff}' GROUP BY ALL;
-- pipeline snapshot at each month end
CREATE OR REPLACE TEMP TABLE r_pipe AS
  SELECT seller_id, ms, sum(value) AS pipeline_value, sum(value * coalesce(probability, 0)) AS weighted_pipeline
  FROM (SELECT seller_id, value, probability, created_at,
               CASE WHEN status = 'open' THEN TIMESTAMP '2200-01-01' ELSE closed_at END AS until FROM deals) d
  JOIN (SELECT ms, least(me, TIMESTAMP '{cutoff}') AS e FROM months) m ON d.created_at < m.e AND d.until >= m.e
  GROUP BY ALL;
-- new customers (first won deal ever) and CAC inputs
CREATE OR REPLACE TEMP TABLE r_newcust AS
  SELECT seller_id, date_trunc('month', first_won) AS ms, count(*) AS new_customers FROM (
    SELECT company_id, min(closed_at) AS first_won, arg_min(seller_id, (closed_at, deal_id)) AS seller_id
    FROM deals WHERE status = 'won' AND company_id IS NOT NULL GROUP BY company_id)
  WHERE first_won >= TIMESTAMP '{start}' AND first_won < TIMESTAMP '{cutoff}' GROUP BY ALL;
-- new organisations (first lead or deal per org_number)
CREATE OR REPLACE TEMP TABLE r_neworg AS
  SELECT seller_id, date_trunc('month', first_at) AS ms, count(*) AS new_organisations FROM (
    SELECT c.org_number, min(x.created_at) AS first_at, arg_min(x.seller_id, (x.created_at, x.kind, x.id)) AS seller_id
    FROM (SELECT company_id, created_at, seller_id, 0 AS kind, lead_id AS id FROM leads
          UNION ALL SELECT company_id, created_at, seller_id, 1, deal_id FROM deals) x
    JOIN companies c USING (company_id) GROUP BY c.org_number)
  WHERE first_at >= TIMESTAMP '{start}' AND first_at < TIMESTAMP '{cutoff}' GROUP BY ALL;
-- activities
CREATE OR REPLACE TEMP TABLE r_act AS
  SELECT seller_id, date_trunc('month', occurred_at) AS ms,
    count(*) FILTER (lower(trim(type)) = 'meeting') AS meetings_booked,
    count(*) FILTER (lower(trim(type)) = 'quote') AS quotes_sent,
    count(*) FILTER (lower(trim(type)) = 'call') AS calls_made
  FROM activities WHERE occurred_at >= TIMESTAMP '{start}' AND occurred_at < TIMESTAMP '{cutoff}' GROUP BY ALL;
-- revenue and growth (dense seller x month grid incl. one year of history for YoY/YTD)
CREATE OR REPLACE TEMP TABLE rev_m AS
  SELECT seller_id, date_trunc('month', date) AS ms, sum(amount) AS revenue FROM revenue
  WHERE date >= TIMESTAMP '{hist}' AND date < TIMESTAMP '{cutoff}' AND seller_id IS NOT NULL GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE r_rev AS
  SELECT * FROM (
    SELECT seller_id, ms, revenue,
      revenue / nullif(lag(revenue, 1) OVER w, 0) - 1 AS revenue_growth_mom,
      revenue / nullif(lag(revenue, 12) OVER w, 0) - 1 AS revenue_growth_yoy,
      ytd / nullif(lag(ytd, 12) OVER w, 0) - 1 AS revenue_growth_ytd
    FROM (SELECT g.seller_id, g.ms, coalesce(r.revenue, 0) AS revenue,
            sum(coalesce(r.revenue, 0)) OVER (PARTITION BY g.seller_id, year(g.ms) ORDER BY g.ms) AS ytd
          FROM (SELECT seller_id, m AS ms FROM sellers,
                range(TIMESTAMP '{hist}', TIMESTAMP '{end}', INTERVAL 1 MONTH) t(m)) g
          LEFT JOIN rev_m r USING (seller_id, ms))
    WINDOW w AS (PARTITION BY seller_id ORDER BY ms))
  WHERE ms >= TIMESTAMP '{start}';
-- costs: own monthly cost pro rata to active days
CREATE OR REPLACE TEMP TABLE r_cost AS
  SELECT seller_id, ms, coalesce(monthly_cost, 0) * greatest(0, epoch(least(me, a_to, TIMESTAMP '{cutoff}') - greatest(ms, a_from)))
         / epoch(me - ms) AS costs
  FROM s, months;
-- CLV: customer-month activity, churn, rolling 12 months
CREATE OR REPLACE TEMP TABLE cm AS
  SELECT seller_id, company_id, date_trunc('month', date) AS ms, sum(amount) AS amt FROM revenue
  WHERE date >= TIMESTAMP '{clvstart}' AND date < TIMESTAMP '{cutoff}' AND seller_id IS NOT NULL GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE sm AS
  SELECT a.seller_id, a.ms, sum(a.amt) AS rev, count(*) FILTER (a.amt > 0) AS act,
         count(*) FILTER (a.amt > 0 AND coalesce(b.amt, 0) <= 0) AS churned
  FROM cm a LEFT JOIN cm b ON a.seller_id = b.seller_id AND a.company_id = b.company_id AND b.ms = a.ms + INTERVAL 1 MONTH
  GROUP BY ALL;
CREATE OR REPLACE TEMP TABLE r_clv AS
  SELECT * FROM (
    SELECT seller_id, ms,
      sum(rev) OVER w12 / nullif(sum(act) OVER w12, 0) * 0.8
        * least(120, 1 / nullif(avg(churned / nullif(act, 0)) OVER w11, 0)) AS clv
    FROM (SELECT g.seller_id, g.ms, coalesce(rev, 0) AS rev, coalesce(act, 0) AS act, coalesce(churned, 0) AS churned
          FROM (SELECT seller_id, m AS ms FROM sellers, range(TIMESTAMP '{clvstart}', TIMESTAMP '{end}', INTERVAL 1 MONTH) t(m)) g
          LEFT JOIN sm USING (seller_id, ms))
    WINDOW w12 AS (PARTITION BY seller_id ORDER BY ms ROWS BETWEEN 11 PRECEDING AND CURRENT ROW),
           w11 AS (PARTITION BY seller_id ORDER BY ms ROWS BETWEEN 11 PRECEDING AND 1 PRECEDING))
  WHERE ms >= TIMESTAMP '{start}';
"""

RESULTS = (
    "r_leads", "r_sql", "r_deals", "r_pipe", "r_newcust", "r_neworg", "r_act", "r_rev", "r_cost", "r_clv",
)  # fmt: skip


def run_duckdb(data: CrmData, start: str, end: str) -> tuple[float, dict[str, pd.DataFrame]]:
    """Run the SQL version; returns (seconds, result frames)."""
    import duckdb

    con = duckdb.connect()
    for name, df in data.tables.items():
        con.register(name, pa.Table.from_pandas(df, preserve_index=False))
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    sql = SQL.format(
        start=s, end=e, cutoff=pd.Timestamp(AS_OF) + pd.Timedelta(days=1),
        hist=s - pd.DateOffset(years=1), clvstart=s - pd.DateOffset(months=11),
    )  # fmt: skip
    t0 = time.perf_counter()
    con.execute(sql)
    out = {r: con.execute(f"SELECT * FROM {r}").df() for r in RESULTS}
    return time.perf_counter() - t0, out


def agreement(df: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per KPI: cells where both engines have a value, and how many differ (rel. 1e-9).

    Cells one engine leaves out by rule are not compared: kpireport gives NaN
    for growth against a negative base and for CLV without any observed month
    pair (DuckDB's ``least(120, NULL)`` returns 120), and omits inactive
    sellers without data where the SQL grid has zeros.
    """
    ours = df.assign(ms=pd.to_datetime(df["period"] + "-01")).set_index(["kpi", "scope_id", "ms"])[
        "value"
    ]
    rows = []
    for frame in frames.values():
        f = frame.set_index(["seller_id", "ms"])
        for col in f.columns:
            if col not in ours.index.get_level_values(0):
                continue
            j = pd.concat(
                [ours.loc[col].rename("a"), f[col].astype(float).rename("b")], axis=1, join="inner"
            ).dropna()
            bad = ~np.isclose(j["a"], j["b"], rtol=1e-9, atol=1e-6)
            rows.append({"kpi": col, "compared": len(j), "different": int(bad.sum())})
    return pd.DataFrame(rows).set_index("kpi")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=80.0)
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument(
        "--cache", type=Path, default=None, help="Parquet cache folder for the demo data"
    )
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    data = load_demo(args.scale, args.cache)
    sizes = ", ".join(f"{k}={len(v):,}" for k, v in data.tables.items())
    print(f"data: {sizes} ({time.perf_counter() - t0:.1f} s to build)")
    last = pd.Timestamp(AS_OF).to_period("M")
    periods = period_range(str(last - (args.months - 1)), str(last))
    start, end = periods[0].start, periods[-1].end

    t0 = time.perf_counter()
    df = compute_kpis(data, periods, by="seller", as_of=AS_OF)
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    df = compute_kpis(data, periods, by="seller", as_of=AS_OF)
    warm = time.perf_counter() - t0
    rss_kpireport = peak_rss_gb()
    print(f"kpireport: {df['kpi'].nunique()} KPIs x {df['scope_id'].nunique()} sellers x {len(periods)} months = "
          f"{len(df):,} rows; cold {cold:.2f} s, warm {warm:.2f} s; peak RSS {rss_kpireport:.2f} GB")  # fmt: skip

    duck, frames = run_duckdb(data, str(start), str(end))
    rows = sum(len(f) for f in frames.values())
    print(f"duckdb: {len(frames)} result tables, {rows:,} rows; {duck:.2f} s")
    check = agreement(df, frames)
    print(f"agreement: {len(check)} KPIs, {check['compared'].sum():,} cells compared, "
          f"{check['different'].sum()} different")  # fmt: skip
    if check["different"].any():
        print(check[check["different"] > 0].to_string())
    print(
        f"ratio kpireport/duckdb: cold {cold / duck:.2f}x, warm {warm / duck:.2f}x (target <= 2x)"
    )
    print(
        f"peak RSS (whole process, incl. data generation and DuckDB): {peak_rss_gb():.2f} GB (target <= 4 GB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
