"""These are scripts that the DDP tests launch in their own processes, not test modules.

pytest (with --doctest-modules) would import them to look for doctests: that costs seconds of
Lightning and transformers imports, and fails outright where those extras are not installed.
"""

collect_ignore_glob = ["*.py"]
