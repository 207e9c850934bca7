"""Policies: which guardrail applies at which scope, and the effective set for an agent."""
