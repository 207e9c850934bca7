"""Organisations, workspaces and the people who administer them."""
