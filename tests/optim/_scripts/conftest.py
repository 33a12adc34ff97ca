"""Scripts the optim tests launch in their own processes, not test modules (pytest's
--doctest-modules would import them)."""

collect_ignore_glob = ["*.py"]
