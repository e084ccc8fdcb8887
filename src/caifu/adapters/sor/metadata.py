"""The one ``MetaData`` every SoR table is declared on (``models``, ``scrm_models``).

A table module imports this, never another table module, so the table modules form no cycle;
``schema`` imports them all when the whole SoR is needed (migrations, data-subject requests).
"""

from __future__ import annotations

from sqlalchemy import MetaData

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)
