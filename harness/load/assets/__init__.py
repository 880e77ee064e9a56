"""Files that run *inside* Locust's processes, not in the harness: the generic locustfile, the
hooks every load run loads (raw samples, progress, pacing, shared auth, the plan's shape) and the
built-in profiles. Nothing in the harness imports these modules: Locust monkey-patches the
standard library with gevent, so it only ever runs in its own subprocess.
"""
