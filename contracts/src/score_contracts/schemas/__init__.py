"""The published contract: JSON Schemas of every event, their index, the catalogue page.

`python -m score_contracts.schemas write` regenerates them from the models; `check` names
every committed file that is incompatible with, or out of date with, the models.
"""

from score_contracts.schemas.catalogue import catalogue_page
from score_contracts.schemas.committed import (
    IncompatibleChange,
    incompatible_changes,
    orphaned_schemas,
    problems,
    published,
    stale_files,
    write,
)
from score_contracts.schemas.compatibility import incompatibilities
from score_contracts.schemas.generation import (
    CATALOGUE_PAGE,
    SCHEMAS_DIR,
    envelope_attributes,
    envelope_schema,
    generated_schemas,
    index,
    subject_filter,
    subject_template,
)

__all__ = [
    "CATALOGUE_PAGE",
    "SCHEMAS_DIR",
    "IncompatibleChange",
    "catalogue_page",
    "envelope_attributes",
    "envelope_schema",
    "generated_schemas",
    "incompatibilities",
    "incompatible_changes",
    "index",
    "orphaned_schemas",
    "problems",
    "published",
    "stale_files",
    "subject_filter",
    "subject_template",
    "write",
]
