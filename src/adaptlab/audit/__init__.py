"""Audit a training set on the five criteria before anything is trained."""

from adaptlab.audit.audit import AuditReport, audit
from adaptlab.audit.criteria import Criterion, Flag

__all__ = ["AuditReport", "Criterion", "Flag", "audit"]
