"""Process-level tests: the real `pushgod serve` as a child process, over real HTTP."""
