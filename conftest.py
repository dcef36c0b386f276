pytest_plugins = ["score_chassis.testing.nats", "score_chassis.testing.databases"]
