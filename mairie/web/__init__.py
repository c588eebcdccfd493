"""The approval web app: token-scoped pages for the signatories and a small JSON API (see `create_app`)."""

from mairie.web.app import create_app

__all__ = ["create_app"]
