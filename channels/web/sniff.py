"""Moved to bot.sniff (the ticket page checks uploads with the same rules); kept for imports."""

from bot.sniff import RULES, matches_type

__all__ = ["RULES", "matches_type"]
