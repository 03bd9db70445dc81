"""A report pack as a whole: shards, the saved plan, ``collect`` and the pack index.

See docs/SCALING.md.

Design decisions
----------------
* **Shards are a stable function of the report id.** :func:`shard_of` hashes
  the report id (SHA-256, not Python's salted ``hash``), so every machine of a
  batch job (a Kubernetes Indexed Job, a SLURM array, cron entries) computes
  the same split without talking to the others, and a report keeps its shard
  when other reports are added or removed. Shards are numbered ``1..N``.
* **Every run saves its whole plan.** A run (sharded or not) writes
  ``<out>/.plans/<pack>.json`` with *every* planned report of the pack (not
  only its shard), atomically; all shards of one pack write the same
  content. ``kpireport collect OUT`` reads the plans, so it needs neither the
  run definition nor the data.
* **The index is built from what is on disk.** :func:`write_index` reads the
  plans and each planned report's manifests (published and ``failed/``), so
  it is right whichever run or shard wrote it last; it is written atomically
  at the end of every run and by ``collect``. It is one self-contained HTML
  file (inline CSS, no script, relative links), every value escaped, so it
  can be opened offline or attached as-is.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kpireport.constants import Scope
from kpireport.errors import ParamsError
from kpireport.report.manifest import read_manifest
from kpireport.report.params import ReportSpec
from kpireport.report.publish import atomic_write_json, atomic_write_text
from kpireport.report.slug import slug

PLANS_DIR = ".plans"
INDEX_NAME = "index.html"
PLAN_VERSION = 1

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


# ------------------------------------------------------------------ shards
def shard_of(report_id: str, shards: int) -> int:
    """The shard (``1..shards``) a report belongs to: a stable hash of its id."""
    digest = hashlib.sha256(report_id.encode("utf-8")).hexdigest()
    return int(digest[:16], 16) % max(1, shards) + 1


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"3/10"`` → ``(3, 10)``; ``None`` stays ``None``.

    Raises
    ------
    ParamsError
        When the text is not ``i/N`` with ``1 <= i <= N``.
    """
    if text is None:
        return None
    m = _SHARD.match(str(text))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ParamsError(
            f"--shard '{text}' is not a shard: write i/N with 1 <= i <= N (for example 3/10)."
        )
    return int(m.group(1)), int(m.group(2))


# -------------------------------------------------------------------- plan
@dataclass(frozen=True)
class PlannedReport:
    """One report of a saved plan (no data, no parameters: enough to check and list it)."""

    report_id: str
    run: str
    title: str
    scope: str
    scope_id: str | None
    scope_name: str
    period: str
    formats: tuple[str, ...]

    @classmethod
    def of(cls, spec: ReportSpec) -> PlannedReport:
        return cls(
            spec.report_id, spec.run, spec.title, spec.scope, spec.scope_id,
            spec.scope_name, spec.period, tuple(spec.formats),
        )  # fmt: skip


def plan_name(params_path: Path | str) -> str:
    """The name a pack's plan is saved under: the run definition's file stem, as a slug."""
    return slug(Path(params_path).stem) or "pack"


def write_plan(out_dir: Path, name: str, specs: Sequence[ReportSpec]) -> Path:
    """Save every planned report of a pack in ``<out>/.plans/<name>.json`` (atomically)."""
    reports = [PlannedReport.of(s).__dict__ | {"formats": list(s.formats)} for s in specs]
    doc = {"plan_version": PLAN_VERSION, "pack": name, "reports": reports}
    return atomic_write_json(out_dir / PLANS_DIR / f"{name}.json", doc)


def read_plans(out_dir: Path, name: str | None = None) -> dict[str, list[PlannedReport]]:
    """The saved plans of an output folder, by pack name (one pack with ``name``).

    Raises
    ------
    ParamsError
        When the folder holds no plan (or not the one named), or a plan file is
        not readable.
    """
    folder = Path(out_dir) / PLANS_DIR
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if name is not None:
        files = [f for f in files if f.stem == name]
    if not files:
        what = f"no plan named '{name}'" if name else "no report plan"
        raise ParamsError(
            f"The output folder '{out_dir}' holds {what}; "
            "run `kpireport run PARAMS --out` (or one of its shards) into it first."
        )
    plans: dict[str, list[PlannedReport]] = {}
    for f in files:
        try:
            doc = json.loads(f.read_text(encoding="utf-8"))
            plans[f.stem] = [
                PlannedReport(**{**r, "formats": tuple(r.get("formats") or ())})
                for r in doc["reports"]
            ]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ParamsError(f"The plan file '{f}' is not readable ({exc}).") from None
    return plans


# ------------------------------------------------------------------ status
@dataclass(frozen=True)
class ReportState:
    """What is on disk for one planned report."""

    planned: PlannedReport
    status: str  # "published", "failed" or "missing"
    error: str | None = None
    error_kind: str | None = None
    outputs: dict[str, str] | None = None  # kind → path relative to the output folder
    stale: bool = False  # published, but the latest attempt failed


def state_of(out_dir: Path, p: PlannedReport) -> ReportState:
    """The published or failed state of one planned report, from its manifests."""
    ok = read_manifest(out_dir / f"{p.report_id}.manifest.json")
    bad = read_manifest(out_dir / "failed" / f"{p.report_id}.manifest.json")
    mine = (p.scope, p.scope_id, p.period)
    published = (
        ok is not None
        and ok.get("status") == "success"
        and (ok.get("scope"), ok.get("scope_id"), ok.get("period")) == mine
    )
    outputs = (
        {k: v["path"] for k, v in (ok.get("outputs") or {}).items() if isinstance(v, dict)}
        if published and ok
        else None
    )
    if bad is not None:
        err = bad.get("error") or {}
        return ReportState(
            p, "failed",
            error=str(err.get("message") or "") if isinstance(err, dict) else str(err),
            error_kind=err.get("kind") if isinstance(err, dict) else None,
            outputs=outputs, stale=published,
        )  # fmt: skip
    if published:
        return ReportState(p, "published", outputs=outputs)
    return ReportState(p, "missing")


def pack_states(out_dir: Path, name: str | None = None) -> dict[str, list[ReportState]]:
    """Every planned report's state, by pack."""
    return {
        pack: [state_of(Path(out_dir), p) for p in planned]
        for pack, planned in read_plans(out_dir, name).items()
    }


# ------------------------------------------------------------------- index
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:2rem;color:#1f2933}
h1{font-size:1.5rem;margin:0 0 .25rem} h2{font-size:1.15rem;margin:2rem 0 .5rem}
p.sum{margin:.25rem 0 1rem;color:#52606d}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e4e7eb;vertical-align:top}
th{background:#f5f7fa}
.st,.per{font-weight:600;white-space:nowrap} .per{font-weight:400}
.published{color:#1b7f3b}.failed{color:#b42318}.missing{color:#8a5a00}
.err{color:#b42318;max-width:40rem;white-space:pre-wrap;word-break:break-word}
"""

_LABEL = {"published": "published", "failed": "failed", "missing": "not built"}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _href(path: str) -> str:
    """A relative link to a file of the pack, each path segment URL-quoted."""
    from urllib.parse import quote

    return _e("/".join(quote(part) for part in path.split("/")))


def render_index(states: dict[str, list[ReportState]], title: str = "Report pack") -> str:
    """The pack index page: one table per pack, everything escaped, no script."""
    all_states = [s for group in states.values() for s in group]
    n = {k: sum(s.status == k for s in all_states) for k in _LABEL}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sum">{len(all_states)} reports: {n["published"]} published, '
        f"{n['failed']} failed, {n['missing']} not built.</p>",
    ]
    for pack, group in states.items():
        if len(states) > 1:
            parts.append(f"<h2>{_e(pack)}</h2>")
        parts.append(
            "<table><thead><tr><th>Report</th><th>Scope</th><th>Period</th><th>Status</th>"
            "<th>HTML</th><th>PDF</th><th>Reason</th></tr></thead><tbody>"
        )
        for s in group:
            p = s.planned
            scope = {Scope.ORGANISATION: "Organisation"}.get(
                p.scope, f"{p.scope.title()} {p.scope_name}"
            )
            links = {}
            for kind in ("html", "pdf"):
                path = (s.outputs or {}).get(kind)
                links[kind] = f'<a href="{_href(path)}">{kind.upper()}</a>' if path else "–"
            reason = ""
            if s.status == "failed":
                reason = f"{s.error_kind or 'error'}: {s.error or ''}"
                if s.stale:
                    reason += " (the links show the previous published version)"
            parts.append(
                f"<tr><td>{_e(p.title)}<br><small>{_e(p.report_id)}</small></td>"
                f'<td>{_e(scope)}</td><td class="per">{_e(p.period)}</td>'
                f'<td class="st {s.status}">{_e(_LABEL[s.status])}</td>'
                f"<td>{links['html']}</td><td>{links['pdf']}</td>"
                f'<td class="err">{_e(reason)}</td></tr>'
            )
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_index(out_dir: Path, title: str = "Report pack") -> Path:
    """Write ``<out>/index.html`` from the saved plans and the manifests on disk."""
    return atomic_write_text(Path(out_dir) / INDEX_NAME, render_index(pack_states(out_dir), title))


# ----------------------------------------------------------------- collect
@dataclass(frozen=True)
class CollectResult:
    """``collect``'s findings: every planned report's state and the index written."""

    states: dict[str, list[ReportState]]
    index: Path

    @property
    def missing(self) -> list[ReportState]:
        """Planned reports that are not published (never built, or their last attempt failed)."""
        return [s for g in self.states.values() for s in g if s.status != "published"]

    @property
    def ok(self) -> bool:
        return not self.missing


def collect(out_dir: Path | str, name: str | None = None) -> CollectResult:
    """Check that every planned report of the folder's pack(s) is published; write the index.

    Raises
    ------
    ParamsError
        When the folder holds no saved plan.
    """
    out = Path(out_dir).expanduser().resolve()
    states = pack_states(out, name)
    index = atomic_write_text(out / INDEX_NAME, render_index(pack_states(out)))
    return CollectResult(states, index)
