"""Supervisor reports (#20): decisions recorded in SQL (`store`), the figures of a period
(`query`), the page, its charts and CSV export (`web`), Prometheus figures (`metrics`)."""
