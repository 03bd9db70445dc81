"""KPI values for goals: the one batched lookup behind a goal's actual, its
baseline (growth targets) and its track record.

Its own module so that :mod:`.definitions` (growth baselines),
:mod:`.evaluate`, :mod:`.check` and :mod:`.suggest` share it without
importing each other in a circle. See docs/GOALS.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpireport.constants import Scope
from kpireport.data.model import CrmData
from kpireport.periods import Period


def _values(
    data: CrmData,
    scope: str,
    kpis: list[str],
    plist: list[Period],
    ids: list[str],
    asof: pd.Timestamp,
) -> pd.Series:
    """KPI values (cut at ``as_of``) indexed by ``(kpi, scope_id, period label)``.

    One :func:`~kpireport.kpis.compute_kpis` call for the whole scope, except
    for customers: there the goals name a few key accounts among thousands of
    companies, so each is evaluated on its own (the KPI engine's single-id
    mode) instead of computing every company. ``scope_id`` is ``""`` for the
    organisation.
    """
    from kpireport.kpis import compute_kpis

    if scope != Scope.CUSTOMER:
        df = compute_kpis(data, plist, by=scope, kpis=kpis, as_of=asof)
        sid = df["scope_id"].astype(object).where(df["scope"] != Scope.ORGANISATION, "")
        index = pd.MultiIndex.from_arrays(
            [df["kpi"].astype(object), sid.fillna(""), df["period"].astype(object)]
        )
        out = pd.Series(df["value"].to_numpy(float), index=index)
        return out[~out.index.duplicated()]
    from kpireport.kpis.compute import cut_intervals, evaluate, resolve_kpis
    from kpireport.kpis.engine import prepared

    starts, ends = cut_intervals(plist, asof)
    known = prepared(data).scope_ids(Scope.CUSTOMER)
    labels = [p.label for p in plist]
    parts = []
    for kdef in resolve_kpis(kpis, Scope.CUSTOMER):
        for sid in ids:
            code = int(known.get_indexer([str(sid)])[0])
            if code < 0:
                vals = np.zeros(len(plist)) if kdef.additive else np.full(len(plist), np.nan)
            else:
                vals = evaluate(data, kdef, Scope.CUSTOMER, plist, starts, ends, asof, code)[0][
                    :, 0
                ]
            index = pd.MultiIndex.from_arrays(
                [[kdef.name] * len(plist), [str(sid)] * len(plist), labels]
            )
            parts.append(pd.Series(vals, index=index))
    return pd.concat(parts) if parts else pd.Series(dtype=float)
