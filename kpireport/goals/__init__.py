"""Stage 3: SMART goals — definitions, follow-up at an as-of date, reverse funnel."""

from kpireport.goals.definitions import load_goals, validate_goals
from kpireport.goals.evaluate import evaluate_goals
from kpireport.goals.funnel import reverse_funnel

__all__ = ["evaluate_goals", "load_goals", "reverse_funnel", "validate_goals"]
