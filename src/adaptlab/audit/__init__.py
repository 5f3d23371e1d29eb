"""Audit a training set on the five criteria before anything is trained."""

from adaptlab.audit.report import AuditReport, Criterion, Flag, audit

__all__ = ["AuditReport", "Criterion", "Flag", "audit"]
