"""``builtin:demo``: its shipped weights (package data) and the command that trains them (``train``)."""
