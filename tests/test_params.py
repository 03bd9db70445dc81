"""Run-definition keys are declared once: validation, did-you-mean and the docs table agree."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from kpireport.errors import ParamsError, ScheduleError
from kpireport.problems import Problems, did_you_mean
from kpireport.report import params
from kpireport.report.params import RUN_KEYS_DECLARED, RunDef, load_plan, run_keys_markdown

ROOT = Path(__file__).resolve().parents[1]
NB = Path(__file__).parent / "notebooks"


def test_docs_table_is_the_declaration():
    text = (ROOT / "docs" / "REPORTS.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- run-keys:begin -->\n(.*?)<!-- run-keys:end -->", text, re.DOTALL)
    assert m, "docs/REPORTS.md lost its run-keys table markers"
    assert m.group(1) == run_keys_markdown()
    for key in ("cell_timeout", "report_timeout", "start_timeout"):
        assert f"| `{key}` | seconds |" in m.group(1)


def test_the_key_lists_and_defaults_come_from_the_declaration():
    assert tuple(k.name for k in RUN_KEYS_DECLARED) == params.RUN_KEYS
    assert len(params.RUN_KEYS) == 16
    assert set(params.PACK_OVERRIDES) < set(params.RUN_KEYS)
    fields = {f.name: f.default for f in dataclasses.fields(RunDef)}
    for key in RUN_KEYS_DECLARED:
        if key.name in fields and fields[key.name] is not dataclasses.MISSING:
            assert fields[key.name] == key.default, key.name
    assert (fields["cell_timeout"], fields["report_timeout"]) == (600.0, 1800.0)
    assert params.LANGUAGES == ("en", "nl")  # from kpireport.constants.LANGUAGES


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_every_problem_is_reported_once_with_did_you_mean(tmp_path):
    p = _write(
        tmp_path / "r.yaml",
        f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\ncell_timout: 5\n"
        "report_timeout: -1\nlanguage: de\nformats: html, pfd\n",
    )
    with pytest.raises(ParamsError) as exc:
        load_plan(p)
    msg = str(exc.value)
    assert msg.startswith("The run definition has 4 problems:\n")
    assert "r.yaml: unknown key 'cell_timout' (did you mean 'cell_timeout'?)." in msg
    assert "r.yaml: 'report_timeout' must be a positive number of seconds, got '-1'." in msg
    assert "r.yaml: language 'de' is not one of en, nl." in msg
    assert "r.yaml: format 'pfd' is not one of html, pdf (did you mean 'pdf'?)." in msg


def test_pack_overrides_are_parsed_by_the_same_declaration(tmp_path):
    _write(tmp_path / "a.yaml", f"notebook: {NB / 'ok.ipynb'}\nperiod: 2024-01\ncell_timeout: 5\n")
    pack = _write(tmp_path / "p.yaml", "include: [a.yaml]\ncell_timeout: 7.5\nformats: pdf\n")
    (run,) = load_plan(pack)
    assert (run.cell_timeout, run.formats, run.report_timeout) == (7.5, ("pdf",), 1800.0)
    bad = _write(tmp_path / "q.yaml", "include: [a.yaml]\ncell_timeout: soon\n")
    with pytest.raises(ParamsError, match=r"^a.yaml \(run 'a'\): 'cell_timeout' must be a "):
        load_plan(bad)


def test_one_collector_for_params_and_schedules():
    problems = Problems()
    problems.unknown_keys({"retires": 1, "jobs": 2}, ("retries", "jobs"), "s.yaml defaults")
    assert problems.non_negative("-2", int, "s.yaml retries", 3) == 3
    assert problems.non_negative("2.5", int, "s.yaml jobs", None) is None
    assert problems == [
        "s.yaml defaults: unknown key 'retires' (did you mean 'retries'?).",
        "s.yaml retries: '-2' must not be negative.",
        "s.yaml jobs: '2.5' is not a whole number.",
    ]
    with pytest.raises(ScheduleError, match=r"^The schedule file has 3 problems:\n  - s.yaml"):
        problems.raise_if_any(ScheduleError, "schedule file")
    Problems().raise_if_any(ParamsError, "run definition")  # nothing found: no error
    assert did_you_mean("Nroth", ["North", "South"]) == " (did you mean 'North'?)"
