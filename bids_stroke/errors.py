"""Exceptions of bids-stroke and the exit codes they map to.

Every error a user can cause is one of these classes. Each carries the exit code of the
BIDS execution specification (see the README), and its message is one line that names
the offending file or value and, where possible, how to fix it. The command line turns
them into that line on stderr and the exit code; library users catch them as the
built-in exception they also subclass.
"""

from __future__ import annotations

import enum
import errno


class ExitCode(enum.IntEnum):
    """Exit codes of the BIDS execution specification used by bids-stroke."""

    SUCCESS = 0
    FAILURE = 1
    VALIDATION_FAILED = 16
    UNKNOWN_LEVEL = 17
    NO_DATA_SELECTED = 18
    USAGE = 64
    BAD_INPUT = 65
    MISSING_INPUT = 66
    CANNOT_CREATE_OUTPUT = 73


#: errno values of an :class:`OSError` that mean "the output cannot be written" (disk
#: full, quota, read-only file system): exit 73, like :class:`OutputError`.
OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


class BidsStrokeError(Exception):
    """Base class: an error with an exit code and a one-line message."""

    exit_code: ExitCode = ExitCode.FAILURE


class BidsValidationError(BidsStrokeError):
    """The input dataset failed BIDS validation (exit 16)."""

    exit_code = ExitCode.VALIDATION_FAILED


class UnknownAnalysisLevel(BidsStrokeError, ValueError):
    """The analysis level is neither ``participant`` nor ``group`` (exit 17)."""

    exit_code = ExitCode.UNKNOWN_LEVEL


class NoDataSelected(BidsStrokeError, LookupError):
    """The participant/session filters selected no data (exit 18)."""

    exit_code = ExitCode.NO_DATA_SELECTED


class UsageError(BidsStrokeError, ValueError):
    """The command line is wrong (exit 64)."""

    exit_code = ExitCode.USAGE


class BadInputError(BidsStrokeError, ValueError):
    """An input file exists but its content is unusable (exit 65)."""

    exit_code = ExitCode.BAD_INPUT


class MissingInputError(BidsStrokeError, FileNotFoundError):
    """A required input file or folder does not exist (exit 66)."""

    exit_code = ExitCode.MISSING_INPUT


class OutputError(BidsStrokeError, OSError):
    """The output cannot be created (exit 73)."""

    exit_code = ExitCode.CANNOT_CREATE_OUTPUT
