"""The edges: reading exports and contacts files, the event store, writing outputs.

Everything here touches the file system; the engine (``engscore.engine``) never imports it.
"""
