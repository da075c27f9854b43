"""The application: the composition root that wires the core (bot/), the channels, the handoff side
and the NLU into the `switchboard` command and its roles. Only this package knows them all."""
