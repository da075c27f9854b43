"""X (Twitter) channel: mentions and DMs through tweepy's async v2 client.

Importing this package imports nothing of tweepy; only `channels.twitter.adapter` does, and the
registry loads it only when a `twitter` channel is configured.
"""
