"""Stage 3: SMART goals — definitions, follow-up at an as-of date, reverse funnel, calibration.

Public API::

    load_goals(data, goals=None) -> DataFrame          # validated goal table
    validate_goals(goals, data=None) -> DataFrame      # GoalError listing every problem
    evaluate_goals(data, goals=None, as_of=...) -> DataFrame
    attainment(data, goal, as_of) -> Series             # one goal
    reverse_funnel(data, kpi, remaining, scope, scope_id, as_of) -> dict
    backtest_goals(data, kpi, scope, scope_id, grain, elapsed, as_of) -> AttainmentBacktest
    cascade_goal(data, goal_id, to, by="share", goals=None, as_of=...) -> DataFrame
    check_goals(data, goals=None, as_of=...) -> DataFrame  # SMART verdicts
    suggest_targets(data, kpi, scope, period, probability, as_of) -> DataFrame
    goal_history(data, scope, scope_id=None, kpi=None, as_of=..., n=12) -> DataFrame
"""

from kpireport.goals.attainment import attainment
from kpireport.goals.calibration import backtest_goals
from kpireport.goals.cascade import cascade_goal
from kpireport.goals.check import check_goals
from kpireport.goals.definitions import load_goals, validate_goals
from kpireport.goals.evaluate import RESULT_COLUMNS, evaluate_goals, status_for_probability
from kpireport.goals.funnel import reverse_funnel
from kpireport.goals.history import goal_history
from kpireport.goals.suggest import suggest_targets

__all__ = [
    "RESULT_COLUMNS",
    "attainment",
    "backtest_goals",
    "cascade_goal",
    "check_goals",
    "evaluate_goals",
    "load_goals",
    "reverse_funnel",
    "status_for_probability",
    "suggest_targets",
    "goal_history",
    "validate_goals",
]
