"""I/O behind small interfaces, each with an in-memory fake for the tests (cosmicpython's adapters)."""
