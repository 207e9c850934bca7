"""The web console for people."""
