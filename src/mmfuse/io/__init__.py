"""Files: the saved-model bundle, the feature cache, hashing. Imports nothing from mmfuse but ``errors``."""
