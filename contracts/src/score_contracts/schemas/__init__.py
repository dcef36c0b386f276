"""The published contract: JSON Schemas of every event (its `data`, its whole envelope),
their index, the catalogue page. Installed from the wheel, `published_schemas()` and
`load_schema()` read the package's copy through `importlib.resources`.

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
    data_schema,
    envelope_attributes,
    envelope_schema,
    generated_schemas,
    index,
    load_schema,
    published_schemas,
    subject_filter,
    subject_template,
)

__all__ = [
    "CATALOGUE_PAGE",
    "SCHEMAS_DIR",
    "IncompatibleChange",
    "catalogue_page",
    "data_schema",
    "envelope_attributes",
    "envelope_schema",
    "generated_schemas",
    "incompatibilities",
    "incompatible_changes",
    "index",
    "load_schema",
    "orphaned_schemas",
    "problems",
    "published",
    "published_schemas",
    "stale_files",
    "subject_filter",
    "subject_template",
    "write",
]
