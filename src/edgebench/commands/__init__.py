"""Click commands that live in their own modules, registered in ``edgebench.cli``."""
