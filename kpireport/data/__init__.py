"""Stage 1: load CRM data from a source, validate it against the contract, make demo data."""

from kpireport.data.model import CrmData

__all__ = ["CrmData", "load", "validate"]


def __getattr__(name: str):
    if name == "load":
        from kpireport.data.load import load

        return load
    if name == "validate":
        from kpireport.data.validate import validate

        return validate
    raise AttributeError(name)
