"""The engine: pure, lazy Polars (and numpy) functions.

LazyFrames and :class:`engscore.rules.Rules` in, LazyFrames out: no paths, no files, no
printing. The use cases (``engscore.score``, ``engscore.segments`` ...) read the inputs with
``engscore.io``, run the engine and write its results; ``tests/test_architecture.py`` keeps
the engine from importing an edge module.
"""
