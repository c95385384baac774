"""Moved to :mod:`knowledge.imports` (the knowledge package owns the file formats); kept so
old imports keep working."""

from knowledge.imports import *  # noqa: F403
from knowledge.imports import COLUMNS as COLUMNS
from knowledge.imports import FORMATS as FORMATS
from knowledge.imports import MEDIA_TYPES as MEDIA_TYPES
