"""Guard rails of issue 9: the loader is right or absent under random damage to an export.

A valid CSV export (the March-2026 fixture of tests/test_kpis.py, with one
non-ASCII seller name) is damaged the ways real exports get damaged: other
delimiters, a Dutch Excel export (``1.234,5``), grouped thousands in one
cell, repeated / case-changed / misspelt headers, non-ASCII digits, blanked
required cells, a file cut off mid-row, another encoding, padded cells.

Properties (docs/DATA.md "Right or absent"):

* ``load`` either raises a :class:`~kpireport.errors.KpiReportError` or returns
  data whose KPIs are exactly those of the undamaged export;
* no-silent-change: whatever ``load`` accepts has the same row counts and the
  same sums of ``deals.value``, ``revenue.amount`` and ``costs.amount``;
* ``kpireport validate`` on the damaged export exits 0 or 1 without a traceback.

The number of examples is bounded for the normal test run; set
``KPIREPORT_FUZZ_EXAMPLES`` (e.g. 2000) for a longer search.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kpireport.cli import main
from kpireport.data.load import load
from kpireport.data.model import CrmData
from kpireport.data.schema import SCHEMAS
from kpireport.errors import KpiReportError
from kpireport.kpis import compute_kpis

BASE = Path(__file__).parent / "data" / "kpis"
EXAMPLES = int(os.environ.get("KPIREPORT_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MONEY = [
    ("deals", "value"),
    ("revenue", "amount"),
    ("costs", "amount"),
    ("sellers", "monthly_cost"),
]
SUMS = [("deals", "value"), ("revenue", "amount"), ("costs", "amount")]
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


# ------------------------------------------------------------------ export
@dataclass
class Export:
    """A CSV export as cells, with how each file is written."""

    tables: dict[str, list[list[str]]]
    delimiter: dict[str, str] = field(default_factory=dict)
    encoding: dict[str, str] = field(default_factory=dict)
    cut: dict[str, float] = field(default_factory=dict)  # fraction of the data part kept
    yaml: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    @classmethod
    def base(cls) -> Export:
        tables = {}
        for path in sorted(BASE.glob("*.csv")):
            with path.open(encoding="utf-8", newline="") as fh:
                tables[path.stem] = [list(r) for r in csv.reader(fh)]
        tables["sellers"][2][1] = "Björn"  # non-ASCII text: encodings matter
        return cls(tables)

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, rows in self.tables.items():
            buf = io.StringIO()
            csv.writer(buf, delimiter=self.delimiter.get(name, ","), lineterminator="\n").writerows(
                rows
            )
            text = buf.getvalue()
            if name in self.cut:
                head = len(text.split("\n", 1)[0]) + 1
                at = head + int(self.cut[name] * (len(text) - head))
                while at < len(text) and at > 0 and text[at - 1] == "\n":
                    at -= 1  # never exactly at a row boundary: that is a smaller export
                text = text[:at]
            encoding = self.encoding.get(name, "utf-8")  # a character it lacks becomes '?'
            (folder / f"{name}.csv").write_bytes(text.encode(encoding, errors="replace"))
        if not self.yaml:
            return folder
        lines = ["path: ."] + [f'{k}: "{v}"' for k, v in self.yaml.items()]
        (folder / "source.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return folder / "source.yaml"


def _cells(ex: Export, kinds: tuple[str, ...], required: bool | None = None) -> list[tuple]:
    """(table, row, col) of the filled cells whose schema column is of ``kinds``."""
    out = []
    for name, rows in ex.tables.items():
        schema = SCHEMAS[name]
        for j, col in enumerate(rows[0]):
            if col not in schema.column_names:
                continue
            c = schema.column(col)
            if c.kind not in kinds or (required is not None and c.required != required):
                continue
            out += [(name, i, j) for i in range(1, len(rows)) if rows[i][j].strip()]
    return out


def _dutch(text: str, grouped: bool) -> str:
    number = float(text)
    whole, frac = f"{abs(number):.2f}".split(".")
    if grouped:
        whole = f"{int(whole):,}".replace(",", ".")
    frac = frac.rstrip("0")
    return ("-" if number < 0 else "") + whole + ("," + frac if frac else "")


# --------------------------------------------------------------- mutations
@st.composite
def mutated(draw: st.DrawFn) -> Export:
    ex = Export.base()
    names = sorted(ex.tables)
    kinds = [
        "delimiter",
        "dutch",
        "grouped",
        "duplicate_header",
        "header_case",
        "header_typo",
        "non_ascii",
        "blank_required",
        "truncate",
        "encoding",
        "padding",
    ]
    chosen = sorted(draw(st.sets(st.sampled_from(kinds), min_size=1, max_size=3)))
    chosen.sort(key=lambda k: k != "dutch")  # the Dutch export first: the others damage it
    for kind in chosen:
        table = draw(st.sampled_from(names))
        rows = ex.tables[table]
        if kind == "delimiter":
            ex.delimiter[table] = draw(st.sampled_from([";", "\t"]))
        elif kind == "dutch":  # the whole export as a Dutch Excel writes it, and declared
            grouped = draw(st.booleans())
            for t, i, j in _cells(ex, ("float",)):
                ex.tables[t][i][j] = _dutch(ex.tables[t][i][j], grouped)
            ex.yaml["decimal"] = ","
            if grouped and draw(st.booleans()):
                ex.yaml["thousands"] = "."
            for t in ex.tables:
                ex.delimiter[t] = ";"
        elif kind == "grouped":  # one amount written with a thousands separator, nothing declared
            cells = [c for c in _cells(ex, ("float",)) if (c[0], ex.tables[c[0]][0][c[2]]) in MONEY]
            t, i, j = draw(st.sampled_from(cells))
            v = ex.tables[t][i][j]
            plain = v.isascii() and v.lstrip("-").isdigit()
            if "decimal" not in ex.yaml and plain and abs(int(v)) >= 1000:
                sep = draw(st.sampled_from([".", ",", " ", "\u00a0", "'"]))
                ex.tables[t][i][j] = f"{int(v):,}".replace(",", sep)
        elif kind == "duplicate_header":
            j = draw(st.integers(0, len(rows[0]) - 1))
            name = draw(
                st.sampled_from([str.upper, str.title, str, lambda s: s.replace("_", " ")])
            )(rows[0][j])
            for r_i, r in enumerate(rows):
                r.append(name if r_i == 0 else r[j])
        elif kind == "header_case":  # names that normalise to the same column: read alike
            j = draw(st.integers(0, len(rows[0]) - 1))
            style = draw(st.sampled_from(["upper", "title", "spaces", "hyphens", "padded"]))
            h = rows[0][j]
            rows[0][j] = {
                "upper": h.upper(),
                "title": h.replace("_", " ").title(),
                "spaces": h.replace("_", " "),
                "hyphens": h.replace("_", "-"),
                "padded": f" {h} ",
            }[style]
        elif kind == "header_typo":  # one letter dropped
            j = draw(st.integers(0, len(rows[0]) - 1))
            h = rows[0][j]
            k = draw(st.integers(0, len(h) - 1))
            rows[0][j] = h[:k] + h[k + 1 :]
        elif kind == "non_ascii":
            t, i, j = draw(st.sampled_from(_cells(ex, ("float", "date"))))
            table_map = draw(st.sampled_from([FULL_WIDTH, ARABIC_INDIC]))
            ex.tables[t][i][j] = ex.tables[t][i][j].translate(table_map)
        elif kind == "blank_required":
            t, i, j = draw(
                st.sampled_from(_cells(ex, ("id", "str", "date", "float", "category"), True))
            )
            ex.tables[t][i][j] = draw(st.sampled_from(["", "  "]))
        elif kind == "truncate":
            ex.cut[table] = draw(st.floats(0.0, 0.999))
        elif kind == "encoding":
            ex.encoding[table] = draw(st.sampled_from(["latin-1", "cp1252", "utf-16", "utf-8-sig"]))
        elif kind == "padding":  # spaces around one filled cell
            t, i, j = draw(st.sampled_from(_cells(ex, ("id", "date", "float", "category"))))
            ex.tables[t][i][j] = f"  {ex.tables[t][i][j]} "
        ex.log.append(f"{kind}:{table}")
    return ex


# ----------------------------------------------------------------- oracles
def _kpis(data: CrmData) -> pd.DataFrame:
    parts = [
        compute_kpis(data, ["2026-03", "2026-Q1"], by=by, as_of="2026-04-01", unattributed=True)
        for by in ("organisation", "team", "seller")
    ]
    return pd.concat(parts, ignore_index=True)


def _totals(data: CrmData) -> dict[str, float]:
    out: dict[str, float] = {f"rows.{t}": len(df) for t, df in data.tables.items()}
    out |= {f"sum.{t}.{c}": float(data.tables[t][c].sum()) for t, c in SUMS}
    return out


@pytest.fixture(scope="module")
def reference() -> tuple[pd.DataFrame, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        data = load(Export.base().write(Path(tmp) / "crm"))
        return _kpis(data), _totals(data)


def _load_or_refuse(ex: Export) -> CrmData | None:
    with tempfile.TemporaryDirectory() as tmp:
        source = ex.write(Path(tmp) / "crm")
        try:
            data = load(source)
        except KpiReportError:
            event("refused")
            return None
    event("accepted")
    return data


# ------------------------------------------------------------------- tests
def test_the_undamaged_export_loads_with_the_hand_computed_numbers(reference) -> None:
    kpis, totals = reference
    org = kpis[(kpis["scope"] == "organisation") & (kpis["period"] == "2026-03")]
    assert org.set_index("kpi").loc["won_value", "value"] == 8000  # D1 + D2 + D5
    assert totals["rows.deals"] == 11 and totals["sum.deals.value"] == 30499
    assert totals["sum.revenue.amount"] == 8700 and totals["sum.costs.amount"] == 3049


@FUZZ
@given(ex=mutated())
def test_fuzz_load_refuses_or_gives_the_same_kpis(reference, ex: Export) -> None:
    data = _load_or_refuse(ex)  # anything but a KpiReportError fails the test
    if data is None:
        return
    pd.testing.assert_frame_equal(_kpis(data), reference[0], obj=f"KPIs after {ex.log}")


@FUZZ
@given(ex=mutated())
def test_no_silent_change_in_sums_or_row_counts(reference, ex: Export) -> None:
    data = _load_or_refuse(ex)
    if data is not None:
        assert _totals(data) == reference[1], ex.log


@settings(FUZZ, max_examples=max(10, EXAMPLES // 4))
@given(ex=mutated())
def test_fuzz_cli_validate_never_shows_a_traceback(ex: Export) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source = ex.write(Path(tmp) / "crm")
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            code = main(["validate", str(source), "--as-of", "2026-04-01"])
    assert code in (0, 1), (ex.log, err.getvalue())
    assert "Traceback" not in err.getvalue()


def test_cli_subprocess_refuses_damaged_exports_in_one_line_each(tmp_path: Path) -> None:
    """The real command on three damaged exports: exit 1, ``error:`` lines, no traceback."""
    damaged = []
    ex = Export.base()
    ex.tables["deals"][1][4] = "1.000"  # D1: 1000 written with a dot
    damaged.append(ex)
    ex = Export.base()
    ex.tables["deals"][0].append("VALUE")
    for r in ex.tables["deals"][1:]:
        r.append(r[4])
    damaged.append(ex)
    ex = Export.base()
    ex.cut["revenue"] = 0.5
    damaged.append(ex)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    for n, ex in enumerate(damaged):
        source = ex.write(tmp_path / f"crm{n}")
        res = subprocess.run(
            [sys.executable, "-m", "kpireport.cli", "validate", str(source)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert res.returncode == 1, res.stderr
        assert "Traceback" not in res.stderr and res.stderr.startswith("error: "), res.stderr
