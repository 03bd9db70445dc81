"""The fictional company behind the demo CRM: Nordlys Systems Oy and how its teams sell.

*Nordlys Systems Oy* is a Finnish B2B software vendor (currency EUR, calendar
``Europe/Helsinki``) with four sales teams whose deal sizes and sales cycles
differ: Enterprise (median deal ~60 k, cycles of months), Mid-Market, SMB
(median ~4 k, cycles of weeks) and a partner team ("Partners Öst").

Design decisions
----------------
* **Teams are data.** Everything that makes a team sell differently (head
  count at scale 1, deal size and spread, cycle, win rate, subscription share
  and churn, activity and prospecting rates, seller cost, marketing budget and
  lead-source mix) is one :class:`TeamProfile`; the generator has no
  team-specific code.
* **Lead sources shape the funnel.** Each source has its own qualification,
  deal and win multipliers (:data:`SOURCE_QUALIFY`, :data:`SOURCE_DEAL`,
  :data:`SOURCE_WIN`): referrals convert best, cold calls worst, so the funnel
  KPIs by source differ as in a real CRM.
* **Open deals carry a stage** from their progress through the cycle, with
  the stage's probability (:data:`STAGE_PROBABILITY`), so weighted pipeline
  and coverage have something to weigh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ORGANISATION = "Nordlys Systems Oy"
TIMEZONE = "Europe/Helsinki"
CURRENCY = "EUR"

SOURCES = ("web", "event", "referral", "cold call", "partner")
#: P(lead is sales-qualified), P(deal | SQL), multiplier on the team win rate
SOURCE_QUALIFY = np.array([0.30, 0.35, 0.60, 0.15, 0.45])
SOURCE_DEAL = np.array([0.75, 0.70, 0.85, 0.65, 0.80])
SOURCE_WIN = np.array([1.00, 0.90, 1.50, 0.70, 1.20])
#: probability that a weekend lead keeps its weekend date (web forms work on Sundays)
SOURCE_WEEKEND = np.array([0.30, 0.02, 0.02, 0.0, 0.02])

STAGES = ("qualification", "needs analysis", "proposal", "negotiation", "closed won", "closed lost")
STAGE_PROBABILITY = np.array([0.10, 0.25, 0.50, 0.75, 1.0, 0.0])
ACTIVITY_TYPES = ("call", "email", "meeting", "quote")
DEAL_ACTIVITY_MIX = np.array([0.30, 0.35, 0.22, 0.13])
PROSPECTING_MIX = np.array([0.60, 0.35, 0.05, 0.0])
#: who owns and agrees the organisation's and the teams' goals
SALES_DIRECTOR = "Marja Ström"
CEO = "Jonas Lind"


@dataclass(frozen=True)
class TeamProfile:
    """How one sales team sells (all rates at scale 1, per fully ramped seller)."""

    name: str
    sellers: int
    manager: str
    deals_per_month: float  # deals created per seller-month
    no_lead_share: float  # share of deals without a lead (upsell, renewal)
    deal_median: float
    deal_sigma: float
    value_round: float
    cycle_median: float  # days from created to closed
    win_rate: float
    subscription_share: float  # won deals billed as a recurring subscription (value = ACV)
    churn: float  # monthly probability a subscription stops
    activities_per_deal: float
    prospecting_per_day: float  # logged prospecting activities per working day
    monthly_cost: float  # fully loaded seller cost per month
    marketing: float  # monthly team marketing budget
    source_mix: tuple[float, float, float, float, float]


TEAMS: tuple[TeamProfile, ...] = (
    TeamProfile("Enterprise", 5, "Kaisa Rautio", 3.0, 0.35, 60_000, 0.5, 500, 110, 0.27,
                0.55, 0.010, 14, 0.5, 10_000, 14_000, (0.20, 0.25, 0.20, 0.30, 0.05)),
    TeamProfile("Mid-Market", 7, "Mats Lindholm", 9.0, 0.25, 18_000, 0.55, 100, 55, 0.32,
                0.45, 0.018, 6, 0.7, 8_000, 20_000, (0.40, 0.15, 0.10, 0.30, 0.05)),
    TeamProfile("SMB", 8, "Heidi Nurmi", 22.0, 0.20, 4_000, 0.5, 10, 24, 0.37,
                0.35, 0.030, 2.5, 0.9, 6_500, 28_000, (0.60, 0.05, 0.08, 0.25, 0.02)),
    TeamProfile("Partners Öst", 4, "Pekka Öhman", 6.0, 0.25, 25_000, 0.55, 100, 70, 0.34,
                0.40, 0.018, 5, 0.4, 7_500, 8_000, (0.10, 0.10, 0.10, 0.05, 0.65)),
)  # fmt: skip
