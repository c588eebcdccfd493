"""Application package: settings, database wiring, services (use cases), CLI, web app, the local stack."""
