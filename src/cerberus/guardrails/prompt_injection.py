"""Finds text aimed at the model instead of the user: instruction smuggling in tool results and
tool poisoning in `tools/list` descriptions and schemas."""

from __future__ import annotations

from typing import ClassVar, Literal

from cerberus.guardrails import Family
from cerberus.guardrails.text_checks import DetectorGuardrail, DirectionSetting


class PromptInjection(DetectorGuardrail):
    type = "prompt_injection"
    family = Family.INJECTION
    description = (
        "Instruction overrides, hidden instructions, exfiltration requests, invisible Unicode "
        "(tags, zero-width, bidi controls) and markup aimed at the model."
    )
    detectors = ("prompt_injection",)
    label = "INJECTION"
    noun = "prompt-injection signs"
    # Rewriting an attack leaves the rest of it in place: the choice is to stop it or watch it.
    actions: ClassVar[tuple[str, ...]] = ("block", "log_only")

    action: Literal["block", "log_only"] = "block"
    direction: DirectionSetting = "response"
