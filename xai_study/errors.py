"""User-facing errors.

Anything raised as :class:`XaiStudyError` is a problem with the user's input or
environment, not a bug: the CLI prints it as one line ``error: <message>`` and exits
with status 2, and the web UI shows the message in the page.
"""


class XaiStudyError(Exception):
    """A clear, one-line problem the user can act on."""


class VideoError(XaiStudyError):
    """The file is not a decodable video (or image), is empty, or is too large."""


class NoFaceError(XaiStudyError):
    """No face was found in any sampled frame."""


class CheckpointError(XaiStudyError):
    """A model checkpoint is missing, malformed, or does not match the architecture."""


class StudyError(XaiStudyError):
    """A study folder, study file or database is malformed."""
