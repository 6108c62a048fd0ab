"""Deprecated import path: this module moved to :mod:`lotus_deploy.stream.temporal` (0.2.0). It still works and warns once."""

import warnings

from .stream.temporal import *  # noqa: F403 - re-export everything of the new home

warnings.warn("lotus_deploy.temporal moved to lotus_deploy.stream.temporal; import it from there", DeprecationWarning, stacklevel=2)
