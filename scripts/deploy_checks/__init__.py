"""The parts of scripts/check-deploy.py (its docstring describes the checks; it imports this package from its own
directory): paths and the report every check shares, facts read from the sources, then one module per Deploy/ target."""
