"""Channel adapters. Each turns its channel's native events into `bot.models.Message`s and sends
`bot.models.Outbound` replies back; nothing channel-specific lives outside this package."""
