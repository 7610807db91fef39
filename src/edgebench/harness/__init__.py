"""The measuring side: runners, isolation, memory and device facts."""
