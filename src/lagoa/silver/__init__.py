"""The silver stage: pending bronze batches de-duplicated by key into ``silver.<entity>``, checked
by a gate on the way, with parse failures and dropped rows in ``silver.<entity>__quarantine``."""

from lagoa.silver.merge import Gate, SilverResult, Verdict, merge_silver

__all__ = ["Gate", "SilverResult", "Verdict", "merge_silver"]
