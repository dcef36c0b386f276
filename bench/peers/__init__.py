"""The programs `make bench` compares SCORE Cases with, each run in its own process."""
