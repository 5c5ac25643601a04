"""Moments posts from the calendar and their publishers, a calendar entry's attachments,
customer-group welcome templates and channels' group join ways

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:00:00.000000
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calendar_entries') as batch:
        batch.add_column(sa.Column('attachments', sa.Text(), server_default='{}', nullable=False))
    op.create_table(
        'moment_posts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('outbox_id', sa.Integer(), nullable=False),
        sa.Column('entry', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('title', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column('jobid', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column('moment_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('problem', sa.Text(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('read_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('listed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('outbox_id'),
    )
    op.create_index('ix_moment_posts_moment_id', 'moment_posts', ['moment_id'])
    op.create_table(
        'moment_publishers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('post_id', sa.Integer(), nullable=False),
        sa.Column('userid', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('task_id', sa.Integer(), nullable=True),
        sa.Column('published_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('likes', sa.Integer(), nullable=False),
        sa.Column('comments', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['post_id'], ['moment_posts.id']),
        sa.ForeignKeyConstraint(['task_id'], ['staff_tasks.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('post_id', 'userid'),
    )
    op.create_index('ix_moment_publishers_post_id', 'moment_publishers', ['post_id'])
    op.create_table(
        'group_welcomes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('image_url', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
        sa.Column('link_title', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column('link_url', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
        sa.Column('link_desc', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=True),
        sa.Column('link_picurl', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
        sa.Column('notify', sa.Boolean(), nullable=False),
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('template_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column('sync_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('sync_error', sa.Text(), nullable=True),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('synced_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key'),
    )
    op.create_table(
        'join_ways',
        sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('chat_ids', sa.Text(), nullable=False),
        sa.Column('room_name', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column('config_id', sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column('qr_code', sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
        sa.Column('sync_status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('sync_error', sa.Text(), nullable=True),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('channel'),
    )
    op.create_index('ix_join_ways_config_id', 'join_ways', ['config_id'])


def downgrade() -> None:
    op.drop_index('ix_join_ways_config_id', table_name='join_ways')
    op.drop_table('join_ways')
    op.drop_table('group_welcomes')
    op.drop_index('ix_moment_publishers_post_id', table_name='moment_publishers')
    op.drop_table('moment_publishers')
    op.drop_index('ix_moment_posts_moment_id', table_name='moment_posts')
    op.drop_table('moment_posts')
    with op.batch_alter_table('calendar_entries') as batch:
        batch.drop_column('attachments')
