"""User-facing errors: the CLI prints them as one line and exits non-zero."""


class W2SError(Exception):
    """An error caused by the user's input or environment, with a one-line message."""


class UnknownNameError(W2SError):
    """A task, model, method or simulator name that no registry knows."""


class DataError(W2SError):
    """Bad data: missing file or column, one class only, empty split, NaN, too few examples."""


class DownloadError(W2SError):
    """A download that failed, was truncated or did not match its pinned checksum."""


class BackendError(W2SError):
    """A language-model backend that failed: server down, HTTP error, unsupported operation."""


class ReportError(W2SError):
    """A report that cannot be made: a missing input, no finished run, an unwritable output."""


class TrackingError(W2SError):
    """Experiment tracking that cannot work: an unknown tracker, its package not installed,
    a store that cannot be written."""
