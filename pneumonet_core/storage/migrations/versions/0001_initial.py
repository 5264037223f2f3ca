"""The first schema: the audit trail, its spool record, the PACS state and claims, the training job.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY_FUNCTION = """CREATE OR REPLACE FUNCTION pneumonet_entries_append_only()
RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.id <= (SELECT coalesce(max(id), 0) FROM entries) THEN
            RAISE EXCEPTION 'audit entries are append-only: an id is never reused';
        END IF;
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only';
END $$ LANGUAGE plpgsql"""
APPEND_ONLY_TRIGGERS = (
    """CREATE TRIGGER entries_append_only BEFORE INSERT OR UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION pneumonet_entries_append_only()""",
    """CREATE TRIGGER entries_refuse_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION pneumonet_entries_append_only()""",
)


def upgrade() -> None:
    text, real = sa.Text, sa.Float
    op.create_table(
        "entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        *(sa.Column(name, text, nullable=False) for name in ("time", "user", "action", "source")),
        *(sa.Column(name, text) for name in ("model_version", "model_sha256", "image_sha256")),
        sa.Column("probability", real),
        sa.Column("label", text),
        sa.Column("threshold", real),
        sa.Column("ood", sa.Integer),
        *(sa.Column(name, text) for name in ("details", "prev_hash", "entry_hash")),
    )
    op.create_index("entries_by_time", "entries", ["time", "id"])
    op.execute(APPEND_ONLY_FUNCTION)
    for statement in APPEND_ONLY_TRIGGERS:
        op.execute(statement)
    op.create_table("audit_spool_landed", sa.Column("spool_id", text, primary_key=True))
    op.create_table(
        "instances",
        sa.Column("sop_uid", text, primary_key=True),
        sa.Column("model_sha256", text, primary_key=True),
        *(sa.Column(name, text, nullable=False) for name in ("study_uid", "series_uid", "status")),
        *(sa.Column(name, text) for name in ("reason", "model_version")),
        sa.Column("probability", real),
        sa.Column("label", text),
        sa.Column("threshold", real),
        sa.Column("threshold_origin", text),
        sa.Column("ood", sa.Integer),
        *(sa.Column(name, text) for name in ("ood_reason", "study_date", "modality")),
        sa.Column("updated_at", text, nullable=False),
    )
    op.create_table(
        "pacs_claims",
        sa.Column("sop_uid", text, primary_key=True),
        sa.Column("model_sha256", text, primary_key=True),
        sa.Column("worker", text, nullable=False),
        sa.Column("expires_at", real, nullable=False),
    )
    op.create_table(
        "training_jobs",
        sa.Column("pool", text, primary_key=True),
        sa.Column("job_id", text, nullable=False),
        sa.Column("status", text, nullable=False),
        sa.Column("stop_requested", sa.Integer, nullable=False),
        sa.Column("heartbeat", real, nullable=False),
    )


def downgrade() -> None:
    for table in ("training_jobs", "pacs_claims", "instances", "audit_spool_landed", "entries"):
        op.drop_table(table)
    op.execute("DROP FUNCTION pneumonet_entries_append_only()")
