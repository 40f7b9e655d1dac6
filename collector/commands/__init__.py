"""The collector's client commands: they talk to a running collector's API, as an installer, the
maintenance crew or a supervisor would."""
