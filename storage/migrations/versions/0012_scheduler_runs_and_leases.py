"""The scheduler keeps each job's last run and, on SQLite, a leadership lease; the
schedule itself is no longer stored (APScheduler's job table goes)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 19:40:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'scheduler_runs',
        sa.Column('job', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('fired_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('finished_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column('detail', sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint('job'),
    )
    op.create_table(
        'runtime_leases',
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('holder', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column('expires_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('renewed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    with op.batch_alter_table('apscheduler_jobs') as batch:
        batch.drop_index('ix_apscheduler_jobs_next_run_time')
    op.drop_table('apscheduler_jobs')


def downgrade() -> None:
    op.create_table(
        'apscheduler_jobs',
        sa.Column('id', sa.Unicode(length=191), nullable=False),
        sa.Column('next_run_time', sa.Float(precision=25), nullable=True),
        sa.Column('job_state', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('apscheduler_jobs') as batch:
        batch.create_index('ix_apscheduler_jobs_next_run_time', ['next_run_time'], unique=False)
    op.drop_table('runtime_leases')
    op.drop_table('scheduler_runs')
