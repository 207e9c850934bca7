"""Agents: the AI clients the proxy admits, and their API keys."""
