"""Online predictions over HTTP: FastAPI app, registry aliases with hot reload, A/B and shadow."""
