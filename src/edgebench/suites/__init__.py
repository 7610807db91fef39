"""Suites: YAML sweeps over model x framework x precision x device, expanded into runs."""
