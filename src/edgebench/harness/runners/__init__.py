"""One file per runtime. Each imports its runtime package lazily, inside its methods."""
