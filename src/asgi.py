"""The ASGI entry point for servers: `uvicorn taskapi.asgi:app`.

Settings are read and logging configured once per process, at import.
"""

import gc

from taskapi.app import create_app
from taskapi.logging_conf import configure_logging
from taskapi.settings import Settings

settings = Settings.from_env()
configure_logging(settings.log_level)
app = create_app(settings)

# What start-up built (the spec, Connexion's operations, the ORM's mappers: some 100k objects)
# lives as long as the process. Frozen out of the cyclic collector's reach, it no longer makes
# each full collection stall every request in flight (README, "What makes taskapi fast").
gc.collect()
gc.freeze()
