"""Thin command-line front ends: parse flags into a config, call one library function, print."""
