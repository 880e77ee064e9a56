"""The report side of a run: JUnit XML, the self-contained readiness.html, the security scan.

Layer 5: it reads :mod:`harness.results.model` values (and the spec) and never re-judges
anything a stage decided; evidence is rendered as recorded.
"""
