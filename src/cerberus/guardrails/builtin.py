"""The guardrail modules shipped with Cerberus; importing this module registers each of them."""
