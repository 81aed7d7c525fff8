"""Sinks: where events go after the reducer. One module per sink; ``_base`` is the seam."""
