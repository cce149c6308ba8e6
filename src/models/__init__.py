"""SQLAlchemy 2 typed tables: rows and their constraints, no behaviour beyond the row."""

from taskapi.models.auth import RefreshToken
from taskapi.models.base import Base
from taskapi.models.idempotency import IdempotentRequest
from taskapi.models.task_counts import TaskCount
from taskapi.models.tasks import PRIORITY_RANKS, Task, TaskPriority, TaskStatus, task_has_tag
from taskapi.models.users import Role, User

__all__ = [
    "PRIORITY_RANKS",
    "Base",
    "IdempotentRequest",
    "RefreshToken",
    "Role",
    "Task",
    "TaskCount",
    "TaskPriority",
    "TaskStatus",
    "User",
    "task_has_tag",
]
