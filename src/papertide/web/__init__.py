"""The site: create_app(settings) builds it (web/app.py)."""

from papertide.web.app import create_app

__all__ = ["create_app"]
