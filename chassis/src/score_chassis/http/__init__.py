"""What a service's HTTP API is made of: the app (`app`), problem details (`problems`),
tokens as dependencies (`auth`), what requests carry (`inputs`), the one write path over
HTTP (`writes`), and the operators' rebuild endpoints (`replay`). The chassis's core — store,
commands, relay, consumer, settings, logging — knows nothing of HTTP."""
