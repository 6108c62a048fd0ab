"""Deprecated import path: this module moved to :mod:`lotus_deploy.stream.depth_video` (0.2.0). It still works and warns once."""

import warnings

from .stream.depth_video import *  # noqa: F403 - re-export everything of the new home

warnings.warn("lotus_deploy.depth_video moved to lotus_deploy.stream.depth_video; import it from there", DeprecationWarning, stacklevel=2)
