"""Errors a user can act on.

Every failure caused by input (data, config, checkpoints, paths, devices) is raised as a
:class:`GenlabError`: the CLI prints its one-line message and a hint, with no traceback unless
``--debug`` is given. Anything else reaching the top is a bug in genlab and keeps its traceback.
"""


class GenlabError(Exception):
    """A problem the user can fix. ``hint`` says what to do about it."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class DataError(GenlabError):
    """A dataset is missing, corrupt or cannot be downloaded."""


class ConfigError(GenlabError):
    """A config key, value or preset is wrong."""


class CheckpointError(GenlabError):
    """A checkpoint cannot be read or does not belong to this run."""


class RunError(GenlabError):
    """A run directory is missing, not a run, or cannot be written."""


class DivergenceError(GenlabError):
    """Training diverged (non-finite loss, exploding energy) and the policy is to stop."""


class PipelineError(GenlabError):
    """Some of the pipeline's jobs failed (each with its own error); the others finished and are reported."""
