"""Real built-in datasets, built offline from package-registry packages (see ``mmfuse datasets --help``)."""
