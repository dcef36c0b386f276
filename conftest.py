pytest_plugins = ["score_testing.nats", "score_testing.databases"]
