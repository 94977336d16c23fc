"""Errors mmfuse raises for problems a user can fix; the CLI prints them as one line, never a traceback."""


class MMFuseError(Exception):
    """Base class: a problem with the user's data, config or saved model."""


class DataError(MMFuseError):
    """A table, column, row or file cannot be used as given."""


class ConfigError(MMFuseError):
    """A preset, config file or option is invalid."""


class BundleError(MMFuseError):
    """A saved model folder is incomplete, corrupt or from an unknown format."""


class NotFittedError(MMFuseError, AttributeError):
    """An estimator was asked to predict, evaluate or save before ``fit`` or ``load``."""
