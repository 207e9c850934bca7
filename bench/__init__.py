"""The benchmark harness: what the gateway costs, measured side by side with a direct connection."""
