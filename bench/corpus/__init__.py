"""runcast's corpus of real training runs and sweeps (bench/corpus/README.md).

Import it from a bench script or test with ``bench/`` on ``sys.path``::

    sys.path.insert(0, "bench")
    from corpus import load
    runs = load.runs(family="mlp_cls")
"""
