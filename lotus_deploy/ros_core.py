"""Deprecated import path: this module moved to :mod:`lotus_deploy.stream.ros_core` (0.2.0). It still works and warns once."""

import warnings

from .stream.ros_core import *  # noqa: F403 - re-export everything of the new home

warnings.warn("lotus_deploy.ros_core moved to lotus_deploy.stream.ros_core; import it from there", DeprecationWarning, stacklevel=2)
