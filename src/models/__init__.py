"""SQLAlchemy 2 typed tables: rows and their constraints, no behaviour beyond the row."""

from taskapi.models.base import Base
from taskapi.models.users import Role, User

__all__ = ["Base", "Role", "User"]
