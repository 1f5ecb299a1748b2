"""The command line: ``trustyard serve``, ``trustyard storage reindex``; in-process calls into services."""
