"""Goal-setting sub-commands of ``kpireport goals`` (docs/GOALS.md).

``kpireport goals cascade --goal G12 --to team [--by share|equal|weights.yaml]
--source S [--goals FILE] [--as-of D] [--write FILE]`` splits a goal down;
``kpireport goals check FILE --source S [--as-of D]`` gives the SMART verdicts
(exit 1 when a goal fails S, M or T); ``kpireport goals suggest --kpi K
--scope team --period P --probability 0.6 --source S [--write FILE]``
proposes targets.

Design decisions
----------------
* Each sub-command takes its own ``--source``/``--goals``/``--as-of`` so the
  flags may follow the sub-command name (``kpireport goals check f.yaml
  --source data/``); plain ``kpireport goals --source S`` still evaluates.
* ``--write FILE`` appends YAML goal items to a goals file only after the
  whole new file validates (:func:`kpireport.goals.cascade.append_goals`):
  an error writes nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

import pandas as pd

from kpireport.cli import args as opts
from kpireport.cli.data import load_source
from kpireport.constants import Scope
from kpireport.errors import GoalError


def _common(p: argparse.ArgumentParser, goals_flag: bool = True) -> None:
    opts.add_source(p)
    if goals_flag:
        p.add_argument(
            "--goals", metavar="FILE", help="YAML goals file (default: the source's goals)"
        )
    opts.add_as_of(p, "reference day (default: today)")


def register_subcommands(goals: argparse.ArgumentParser) -> None:
    """Add ``cascade``, ``check`` and ``suggest`` under the ``goals`` parser."""
    sub = goals.add_subparsers(dest="goals_command", metavar="SUBCOMMAND")
    c = sub.add_parser(
        "cascade",
        help="split a goal down to teams or sellers",
        description=(
            "Split an organisation goal over its teams (or sellers), or a team goal over its "
            "sellers, by trailing-12-month share, equally or by weights; the children sum "
            "exactly to the parent."
        ),
    )
    _common(c)
    c.add_argument("--goal", required=True, metavar="GOAL_ID", help="the goal to split")
    c.add_argument(
        "--to",
        required=True,
        choices=[Scope.TEAM.value, Scope.SELLER.value],
        help="the child scope",
    )
    c.add_argument(
        "--by",
        default="share",
        metavar="share|equal|WEIGHTS.yaml",
        help="trailing-12-month share (default), equal, or a YAML file child: weight",
    )
    c.add_argument("--write", metavar="FILE", help="append the child goals to this goals file")
    c.set_defaults(func=run_cascade)
    k = sub.add_parser(
        "check",
        help="SMART verdicts per goal before anyone agrees (exit 1 on S, M or T failures)",
        description=(
            "Check every goal of FILE (default: the source's goals table) letter by letter: "
            "S a registry KPI and a scope that exists, M a numeric or growth target, A agreed, "
            "R the forecast probability and history, T a period with an end, not over. "
            "Exits 1 when any goal fails S, M or T."
        ),
    )
    k.add_argument("file", nargs="?", metavar="FILE", help="YAML goals file")
    _common(k, goals_flag=False)
    opts.add_format(k, ("table", "json"))
    k.set_defaults(func=run_check)
    s = sub.add_parser(
        "suggest",
        help="suggest targets reached with a chosen probability, with what they take",
        description=(
            "Per scope id, the target reached with --probability (from the forecast's "
            "simulated totals), the growth it implies vs last year and the reverse funnel "
            "(deals, opportunities, leads, meetings, quotes) at the scope's own rates."
        ),
    )
    _common(s, goals_flag=False)
    s.add_argument("--kpi", required=True, metavar="NAME", help="registry KPI")
    s.add_argument("--scope", required=True, choices=[x.value for x in Scope], help="scope")
    s.add_argument("--scope-id", dest="scope_ids", action="append", metavar="ID",
                   help="only this id (repeatable; required for customers)")  # fmt: skip
    s.add_argument("--period", required=True, metavar="PERIOD", help="2027-Q1, 2027-01, a span…")
    s.add_argument(
        "--probability", type=float, default=0.6, help="chance of reaching it (default 0.6)"
    )
    s.add_argument("--write", metavar="FILE", help="append the suggestions as unagreed goals")
    opts.add_format(s, ("table", "csv", "json"))
    s.set_defaults(func=run_suggest)


def _load(args: argparse.Namespace):
    if not args.source:
        raise GoalError(
            f"kpireport goals {args.goals_command} needs --source.",
            hint="Example: kpireport goals check goals.yaml --source data/ --as-of 2026-11-20.",
        )
    return load_source(args)


def run_cascade(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Execute ``kpireport goals cascade``; returns the exit code."""
    from kpireport.goals.cascade import append_goals, cascade_goal, cascade_yaml

    out = out or sys.stdout
    data, as_of = _load(args)
    kids = cascade_goal(data, args.goal, Scope(args.to), by=args.by, goals=args.goals, as_of=as_of)
    block = cascade_yaml(kids, parent=args.goal, by=args.by, as_of=as_of)
    if args.write:
        append_goals(args.write, block, data)
        out.write(f"{len(kids)} child goals of {args.goal} appended to {args.write}.\n")
    else:
        out.write(block)
    return 0


MARK = {"pass": "✓", "fail": "✗", "unknown": "?"}


def run_check(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Execute ``kpireport goals check``; 1 when a goal fails S, M or T."""
    import json

    from kpireport.cli.output import goal_records
    from kpireport.goals.check import check_goals, smart_failures

    out = out or sys.stdout
    data, as_of = _load(args)
    checked = check_goals(data, args.file, as_of=as_of)
    if args.format == "json":
        json.dump(goal_records(checked), out, indent=2, ensure_ascii=False)
        out.write("\n")
    elif checked.empty:
        out.write("No goals.\n")
    else:
        for _, r in checked.iterrows():
            who = (
                Scope.ORGANISATION.value
                if r["scope"] == Scope.ORGANISATION
                else f"{r['scope']} {r['scope_id']}"
            )
            marks = "  ".join(f"{x} {MARK[r[x]]}" for x in ("S", "M", "A", "R", "T"))
            out.write(f"{r['goal_id']}  {r['kpi']}  {who}  {r['period']}   {marks}\n")
            for x in ("S", "M", "A", "R", "T"):
                if r[f"{x}_note"]:
                    out.write(f"    {x} {MARK[r[x]]} {r[f'{x}_note']}\n")
        bad = smart_failures(checked)
        out.write(
            f"{len(checked)} goal{'s' if len(checked) != 1 else ''} checked as of {as_of}; "
            f"{len(bad)} fail{'s' if len(bad) == 1 else ''} S, M or T.\n"
        )
    return 1 if len(smart_failures(checked)) else 0


def run_suggest(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Execute ``kpireport goals suggest``; returns the exit code."""
    from kpireport.cli.output import fmt_value as _fmt
    from kpireport.cli.output import goal_records, write_machine_readable
    from kpireport.goals import suggest_targets
    from kpireport.goals.cascade import append_goals
    from kpireport.goals.suggest import suggestions_yaml
    from kpireport.kpis.registry import REGISTRY

    out = out or sys.stdout
    data, as_of = _load(args)
    df = suggest_targets(
        data, args.kpi, args.scope, args.period, args.probability, as_of, scope_ids=args.scope_ids
    )
    if args.write:
        append_goals(
            args.write, suggestions_yaml(df, probability=args.probability, as_of=as_of), data
        )
    if write_machine_readable(df, args.format, out, goal_records):
        return 0
    unit = str(REGISTRY[args.kpi].unit)
    frame = pd.DataFrame(
        {
            "scope_id": df["scope_id"].fillna("—"),
            "target": [_fmt(v, unit) for v in df["target"]],
            "chance": [_fmt(v, "percent") for v in df["probability_achieved"]],
            "last_year": [_fmt(v, unit) for v in df["last_year"]],
            "growth": [
                "–" if pd.isna(v) else (f"{v * 100:+.1f} pp" if unit == "percent" else f"{v:+.1%}")
                for v in df["growth"]
            ],
            **{
                k.replace("_needed", ""): [_fmt(v, "count") for v in df[k]]
                for k in (
                    "deals_needed",
                    "opportunities_needed",
                    "leads_needed",
                    "meetings_needed",
                    "quotes_needed",
                )  # fmt: skip
            },
        }
    )
    out.write(
        f"Targets for {args.kpi} ({args.scope}, {df['period'].iloc[0]}) reached with a "
        f"{args.probability:.0%} chance, as of {as_of}:\n"
    )
    out.write(frame.to_string(index=False) + "\n")
    if args.write:
        n = int(df["target"].notna().sum())
        out.write(f"{n} suggested goals appended to {args.write} (not agreed yet).\n")
    return 0
