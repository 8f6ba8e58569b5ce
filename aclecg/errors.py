"""Exceptions that describe bad input or state; the CLI and the app show their message, never a traceback."""


class AclEcgError(Exception):
    """Base class: a problem the user can fix (bad file, bad option, missing data)."""


class DataError(AclEcgError):
    """A record or dataset on disk is malformed; the message names the file and what is wrong."""


class ConfigError(AclEcgError, ValueError):
    """A configuration value is invalid; the message names the key and the accepted values."""


class CheckpointError(AclEcgError):
    """A checkpoint is missing, corrupted, or does not match the data it is used with."""


class StorageError(AclEcgError, OSError):
    """A file could not be written (disk full, read-only, no permission); the message names the path and cause."""

    def __str__(self) -> str:
        return str(self.strerror) if self.strerror else super().__str__()
