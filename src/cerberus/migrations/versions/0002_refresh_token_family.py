"""refresh token family

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 07:00:00

A login's refresh tokens share a family (the first token's id), so that a used token
presented again, a sign it was stolen, ends every token of its login. Rows from before
have no family: each is its own.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("family", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_refresh_tokens_family", ["family"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_refresh_tokens_family")
        batch_op.drop_column("family")
