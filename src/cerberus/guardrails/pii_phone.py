"""Finds phone numbers (international and North American forms, >= 10 digits) in message texts."""

from __future__ import annotations

from cerberus.guardrails import Family
from cerberus.guardrails.text_checks import DetectorGuardrail


class PiiPhone(DetectorGuardrail):
    type = "pii_phone"
    family = Family.PII
    description = (
        "Phone numbers, international and North American, at least 10 digits; block, redact or log."
    )
    detectors = ("phone",)
    label = "PHONE"
    noun = "phone numbers"
