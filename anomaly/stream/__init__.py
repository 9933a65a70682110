"""Scoring Kafka streams: source → decode → detector → threshold → store, dead letters and alerts.

One small module per step: ``decode`` (messages to readings/images or a rejection), ``windows``
(per-source sliding windows for single readings), ``models`` (the serving model and its hot swap),
``sink`` (the one-transaction database write), ``deadletter`` and ``alerts`` (what goes back to
Kafka), ``metrics`` (Prometheus and /healthz), ``consumer`` (the loop that ties them together).
"""
