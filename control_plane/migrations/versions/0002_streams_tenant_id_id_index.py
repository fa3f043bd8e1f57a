"""streams: one index on (tenant_id, id) for keyset pages, instead of one on tenant_id

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("streams", schema=None) as batch_op:
        batch_op.create_index("ix_streams_tenant_id_id", ["tenant_id", "id"], unique=False)
        batch_op.drop_index(batch_op.f("ix_streams_tenant_id"))


def downgrade() -> None:
    with op.batch_alter_table("streams", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_streams_tenant_id"), ["tenant_id"], unique=False)
        batch_op.drop_index("ix_streams_tenant_id_id")
