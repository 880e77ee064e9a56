"""Stage commands of the CLI, one module per command, registered by ``harness/cli.py``.

They are faces (the top layer): each parses its options, runs its stage and maps the stage's
result onto the exit-code contract. Keeping them apart from ``cli.py`` lets each stage own its
command without the CLI module growing with every stage.
"""
