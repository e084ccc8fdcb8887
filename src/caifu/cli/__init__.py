"""The ``caifu`` command: thin commands that parse input, call one service, show the result.

``common`` holds the app and what commands share; each context's module adds its commands
(the same names as ``services/<context>`` and ``api/<context>``).
"""

from caifu.cli import compliance as compliance  # noqa: F401  (each registers its commands)
from caifu.cli import demo as demo  # noqa: F401
from caifu.cli import ingest as ingest  # noqa: F401
from caifu.cli import lineage as lineage  # noqa: F401
from caifu.cli import metrics as metrics  # noqa: F401
from caifu.cli import platform as platform  # noqa: F401
from caifu.cli import profiles as profiles  # noqa: F401
from caifu.cli import quality as quality  # noqa: F401
from caifu.cli import recommend as recommend  # noqa: F401
from caifu.cli import risk as risk  # noqa: F401
from caifu.cli import risk_events as risk_events  # noqa: F401
from caifu.cli import risk_reference as risk_reference  # noqa: F401
from caifu.cli import risk_tasks as risk_tasks  # noqa: F401
from caifu.cli import scrm as scrm  # noqa: F401
from caifu.cli import text as text  # noqa: F401
from caifu.cli import value as value  # noqa: F401
from caifu.cli.common import app as app

__all__ = ["app"]
