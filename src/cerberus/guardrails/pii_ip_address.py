"""Finds IPv4 and IPv6 addresses (validated) in any text a message carries."""

from __future__ import annotations

from cerberus.guardrails import Family
from cerberus.guardrails.text_checks import DetectorGuardrail


class PiiIpAddress(DetectorGuardrail):
    type = "pii_ip_address"
    family = Family.PII
    description = "IPv4 and IPv6 addresses (validated); block, redact or log."
    detectors = ("ip_address",)
    label = "IP_ADDRESS"
    noun = "IP addresses"
