"""Sinks: where events go after the reducer. One module per sink; ``_base`` is the seam to
the runtime, ``_transport`` the one seam to the network (``_http``, ``_grpc``)."""
