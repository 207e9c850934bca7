"""The three roles people can hold, and what each may do."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    SUPER_ADMIN = "super_admin"  # the whole platform, creates organisations
    ORG_ADMIN = "org_admin"  # its own organisation, read-write
    ORG_VIEWER = "org_viewer"  # its own organisation, read-only
