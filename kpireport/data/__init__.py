"""Stage 1: load CRM data from a source, validate it against the contract, make demo data."""

from kpireport.data.load import load
from kpireport.data.model import CrmData
from kpireport.data.validate import validate

__all__ = ["CrmData", "load", "validate"]
