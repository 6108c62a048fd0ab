"""Deprecated import path: this module moved to :mod:`lotus_deploy.stream.metric` (0.2.0). It still works and warns once."""

import warnings

from .stream.metric import *  # noqa: F403 - re-export everything of the new home

warnings.warn("lotus_deploy.metric moved to lotus_deploy.stream.metric; import it from there", DeprecationWarning, stacklevel=2)
