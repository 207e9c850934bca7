"""Finds US social security numbers (valid area, group and serial) in any text a message carries."""

from __future__ import annotations

from cerberus.guardrails import Family
from cerberus.guardrails.text_checks import DetectorGuardrail


class PiiSsn(DetectorGuardrail):
    type = "pii_ssn"
    family = Family.PII
    description = "US social security numbers (valid area, group and serial); block, redact or log."
    detectors = ("ssn",)
    label = "SSN"
    noun = "US social security numbers"
