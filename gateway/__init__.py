"""smsgw: an email-to-SMS gateway daemon."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("smsgw")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
