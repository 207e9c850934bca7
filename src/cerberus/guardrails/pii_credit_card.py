"""Finds payment card numbers (13-19 digits, known networks, Luhn) in any text a message carries."""

from __future__ import annotations

from cerberus.guardrails import Family
from cerberus.guardrails.text_checks import DetectorGuardrail


class PiiCreditCard(DetectorGuardrail):
    type = "pii_credit_card"
    family = Family.PII
    description = "Payment card numbers (13-19 digits, known networks, Luhn); block, redact or log."
    detectors = ("credit_card",)
    label = "CREDIT_CARD"
    noun = "payment card numbers"
