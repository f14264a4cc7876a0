"""engscore: batch engagement analysis of exported e-mail marketing data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("engscore")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
