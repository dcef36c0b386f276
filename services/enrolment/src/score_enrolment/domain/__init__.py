"""The aggregates of the enrolment service, one module each: commands, state and the rules
between them, pure."""
