"""Testing your own workflows: ``sustain.testing``."""
