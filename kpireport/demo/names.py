"""Names in the demo CRM: sellers, customer companies and their industries.

Design decisions
----------------
* **Nordic and recognisable.** First and last names, company words and legal
  forms (Oy, Ab, AB, AS ...) fit a Finnish company selling around the Baltic,
  with å, ä and ö in them so every output is tested on non-ASCII text.
* **Seller names follow hire order** (:func:`seller_names`): the longest-serving
  seller is always Björn Åkesson, so examples in the docs stay valid at any
  scale; names repeat only beyond 600 sellers.
* **Company names are drawn** (:func:`company_names`) from word × trade ×
  legal form (3 000 combinations), so names repeat at larger scales while
  ``company_id`` and ``org_number`` stay unique, as in a real CRM.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kpireport.demo import columns as col

INDUSTRIES = (
    "Manufacturing", "Retail", "Logistics", "Healthcare", "Financial services",
    "Public sector", "IT & software", "Construction", "Energy", "Education",
)  # fmt: skip
FIRST_NAMES = (
    "Björn", "Aino", "Mikko", "Sanna", "Jukka", "Elina", "Oskar", "Laura", "Ville", "Henna",
    "Antti", "Johanna", "Timo", "Maria", "Eero", "Kaisa", "Lars", "Saara", "Petteri", "Noora",
    "Jari", "Emma", "Tuomas", "Riikka", "Sami", "Linnea", "Olli", "Katja", "Anders", "Päivi",
)  # fmt: skip
LAST_NAMES = (
    "Åkesson", "Virtanen", "Korhonen", "Mäkinen", "Nieminen", "Hämäläinen", "Laine", "Heikkinen",
    "Koskinen", "Järvinen", "Lehtonen", "Lindqvist", "Saarinen", "Salminen", "Holmström",
    "Tuominen", "Rantanen", "Karjalainen", "Söderberg", "Leinonen",
)  # fmt: skip
COMPANY_WORDS = (
    "Aalto", "Kivi", "Meri", "Revontuli", "Tunturi", "Polar", "Boreal", "Saimaa", "Kaamos",
    "Lumi", "Nordic", "Baltic", "Helmi", "Väre", "Sisu", "Kelo", "Aurora", "Tammi", "Koivu", "Ilma",
)  # fmt: skip
COMPANY_TRADES = (
    "Logistics", "Metal", "Foods", "Health", "Energy", "Systems", "Build", "Retail", "Data",
    "Consulting", "Pharma", "Paper", "Marine", "Solutions", "Tech",
)  # fmt: skip
COMPANY_FORMS = ("Oy", "Oy", "Oy", "Ab", "Oyj", "AB", "AS", "GmbH", "Ltd")


def seller_names(n: int) -> np.ndarray:
    """The names of ``n`` sellers in hire order (index 0 is Björn Åkesson)."""
    i = np.arange(n)
    first = i % len(FIRST_NAMES)
    last = (first + i // len(FIRST_NAMES)) % len(LAST_NAMES)
    return np.array([f"{FIRST_NAMES[a]} {LAST_NAMES[b]}" for a, b in zip(first, last, strict=True)])


def company_names(rng: np.random.Generator, n: int) -> pd.Series:
    """``n`` company names drawn from word x trade x legal form (three draws from ``rng``)."""
    w1 = rng.integers(0, len(COMPANY_WORDS), n)
    w2 = rng.integers(0, len(COMPANY_TRADES), n)
    w3 = rng.integers(0, len(COMPANY_FORMS), n)
    combos = [f"{a} {b} {c}" for a in COMPANY_WORDS for b in COMPANY_TRADES for c in COMPANY_FORMS]
    return col.labels((w1 * len(COMPANY_TRADES) + w2) * len(COMPANY_FORMS) + w3, combos)
