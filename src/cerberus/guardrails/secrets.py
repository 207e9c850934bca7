"""Finds credentials in any text a message carries: cloud keys, provider tokens, private keys,
JWTs, passwords in URLs and connection strings, random values assigned to secret names."""

from __future__ import annotations

from cerberus.guardrails import Family
from cerberus.guardrails.text_checks import DetectorGuardrail


class Secrets(DetectorGuardrail):
    type = "secrets"
    family = Family.SECRETS
    description = (
        "Cloud keys, GitHub/GitLab/Slack/Stripe/OpenAI-style tokens, private keys, JWTs, "
        "passwords in URLs and connection strings, high-entropy secret assignments."
    )
    detectors = ("secrets",)
    label = "SECRET"
    noun = "secrets"
