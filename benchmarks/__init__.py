"""Figures that prove the template (not an owner's app): scale model, fan-out throughput."""
