"""Moved to :mod:`knowledge.service` (the knowledge package owns the whole lifecycle); kept so
old imports keep working."""

from knowledge.errors import ValidationFailed as ValidationFailed
from knowledge.service import AUDIT_MAX as AUDIT_MAX
from knowledge.service import FIELDS as FIELDS
from knowledge.service import Change as Change
from knowledge.service import KnowledgeService as KnowledgeService
from knowledge.service import answer_warnings as answer_warnings
from knowledge.service import changed_fields as changed_fields
from knowledge.service import summary as summary
from knowledge.service import validate as validate
