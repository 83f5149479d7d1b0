"""Hearth's benchmark suite: each figure measured next to a baseline run in the same process on the
same machine, reported as a ratio (these machines are shared and noisy; ratios travel, absolute
milliseconds do not). It never asserts: targets are reported, not enforced at test time.
"""
