"""indexes for the console: tasks by due day and by status and staff, member tags by tag
and source, members who left and members per owner

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 12:00:00.000000
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_staff_tasks_due_date', 'staff_tasks', ['due_date'])
    op.create_index('ix_staff_tasks_status_staff', 'staff_tasks', ['status', 'staff_id'])
    op.create_index('ix_member_tags_counts', 'member_tags', ['tag_id', 'source', 'source_ref', 'last_seen'])
    op.create_index('ix_members_left_at', 'members', ['left_at'])
    op.create_index('ix_members_owner_left', 'members', ['owner_staff_id', 'left_at'])


def downgrade() -> None:
    op.drop_index('ix_members_owner_left', table_name='members')
    op.drop_index('ix_members_left_at', table_name='members')
    op.drop_index('ix_member_tags_counts', table_name='member_tags')
    op.drop_index('ix_staff_tasks_status_staff', table_name='staff_tasks')
    op.drop_index('ix_staff_tasks_due_date', table_name='staff_tasks')
