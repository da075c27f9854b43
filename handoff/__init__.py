"""Tickets, agents, assignment, priority and SLA, the agent console. Until tickets land, handoff
decisions are consumed from the `handoff` stream."""
