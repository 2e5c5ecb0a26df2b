"""Marker topic: agents subscribed through it get :class:`RawBatch` values."""

from __future__ import annotations

from typing import Any

import faust


class BatchTopic(faust.Topic):
    """A Faust topic whose partitions are delivered to its agent one fetch batch at a time.

    Decoding is left to the agent (``value_serializer="raw"``): validating a whole batch in
    one place is both faster and the only way to dead-letter bad records with their offsets.
    """

    def __init__(self, app: faust.App, *, topics: list[str], **kwargs: Any) -> None:
        kwargs.setdefault("value_serializer", "raw")
        kwargs.setdefault("key_serializer", "raw")
        super().__init__(app, topics=topics, **kwargs)
        # One transaction per subscription and partition (`batching.transactions`).
        groups: dict[str, str] | None = getattr(app, "transaction_groups", None)
        if groups is not None:
            groups.update(dict.fromkeys(topics, min(topics)))
