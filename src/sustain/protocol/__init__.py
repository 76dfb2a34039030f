"""The wire protocol, pure: records, envelopes, request validation, addresses and tags.

Nothing in this package performs I/O, reads a clock or draws random numbers.
"""
