"""Change history: every control-plane write, for security reviews."""
