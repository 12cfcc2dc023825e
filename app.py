"""The entry point `flask --app app run`, its commands (`flask --app app chat`...) and gunicorn (`app:create_app()`)
load: the service's application factory, from the `inboxgpt` package."""

from inboxgpt.web.app import EXTENSION, create_app

__all__ = ["EXTENSION", "create_app"]
