"""Finds email addresses in any text a message carries."""

from __future__ import annotations

from cerberus.guardrails import Family
from cerberus.guardrails.text_checks import DetectorGuardrail


class PiiEmail(DetectorGuardrail):
    type = "pii_email"
    family = Family.PII
    description = "Email addresses; block, redact or log."
    detectors = ("email",)
    label = "EMAIL"
    noun = "email addresses"
