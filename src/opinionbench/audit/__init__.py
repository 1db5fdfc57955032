"""Audits of published datasets against the primary microdata (the `.sav` files).

Why: a benchmark's numbers are only as good as the release they were computed from; OCR, LLM
correction and loaders all lose things silently (labels SPSS cut short, an item named wrong, an
answer labelled "None" read as missing). Every question of a release gets one row saying whether
the microdata agree and, if not, which kind of difference it is and why.
"""

from opinionbench.audit.group_counts import audit_group_counts
from opinionbench.audit.release import STATUSES, audit_release

__all__ = ["audit_release", "audit_group_counts", "STATUSES"]
