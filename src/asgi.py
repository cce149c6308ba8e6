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

# The requests in flight hold objects the cyclic collector tracks. At the default threshold
# (700 net allocations) young collections keep walking them, and promote those still alive to
# be walked again by older collections; few of them are ever garbage the collector must find,
# since a request's objects go when its answer is sent (README, "What makes taskapi fast").
YOUNG_COLLECTION_THRESHOLD = 10_000
gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])
