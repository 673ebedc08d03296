"""The one family of errors a user can cause.

The CLI catches :class:`ScalelabError` and prints its message as one line with a non-zero exit; anything
else is a bug and keeps its traceback. Messages say what was wrong and how to fix it.
"""


class ScalelabError(Exception):
    """Base class of every error caused by user input, files or environment."""


class SpecError(ScalelabError, ValueError):
    """A network spec, scaling coefficient or preset name is invalid."""


class DataError(ScalelabError):
    """A dataset is missing, corrupt, or named wrongly."""


class TrainingError(ScalelabError):
    """Training could not go on (for example the loss became NaN or infinite)."""


class SearchError(ScalelabError):
    """A study, storage or search setting is invalid."""
