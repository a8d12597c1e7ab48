"""The applicants' portal (``sigw portal``): the status page people open, and the ``NotifyService`` that takes
the gateway's result notices (Art. 16)."""

__all__: list[str] = []
