"""The client side of pushgod: what a program that talks to a pushgod server over HTTP needs.

A paired identity stored on disk (`identity.py`), one JSON request and its error envelope
(`api.py`), a channel's NDJSON stream followed with resume and backoff (`stream.py`), and
items with their sealed fields opened (`items.py`). `pushgod listen` and the `pushgod
mcp-channel` bridge are both built on it; it imports nothing of ours but `model`.
"""
