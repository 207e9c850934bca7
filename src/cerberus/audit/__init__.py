"""Audit: every proxy decision, written in batches and queried by admins."""
