"""Cerberus: a governance gateway for the Model Context Protocol."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cerberus-gateway")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+local"
