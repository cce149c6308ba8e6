"""The ASGI entry point for servers: `uvicorn taskapi.asgi:app`.

Settings are read and logging configured once per process, at import.
"""

from taskapi.app import create_app
from taskapi.logging_conf import configure_logging
from taskapi.settings import Settings

settings = Settings.from_env()
configure_logging(settings.log_level)
app = create_app(settings)
