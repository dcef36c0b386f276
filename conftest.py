pytest_plugins = ["score_chassis.testing.nats"]
