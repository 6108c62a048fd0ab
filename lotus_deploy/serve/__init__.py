"""Serving and dataset-scale inference above the runtime (Ray Data, Triton): later issues fill this slot."""
